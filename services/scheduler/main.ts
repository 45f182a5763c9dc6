/**
 * `postline scheduler`: moves retry records back to dispatch when they are due.
 * `startScheduler` runs it in-process (tests, tools).
 */
import type { PostlineConfig } from '../../shared/config.js';
import type { Shutdown } from '../../shared/lifecycle.js';
import { serviceMain, startRuntime, type RuntimeOptions } from '../../shared/service-runtime.js';
import { Scheduler } from './scheduler.js';
import { instrumentScheduler } from './metrics.js';
import { instrumentStageConsumer } from '../../shared/metrics.js';

export const SCHEDULER_GROUP = 'postline-scheduler';

export async function startScheduler(config: PostlineConfig, opts: RuntimeOptions & { ops?: boolean } = {}): Promise<{ shutdown: Shutdown; close(): Promise<boolean> }> {
  const rt = await startRuntime('scheduler', config, opts);
  const consumer = rt.kafka.consumer({ groupId: SCHEDULER_GROUP, maxWaitTimeInMs: 1000 });
  rt.watchConsumer('consumer', consumer);
  await consumer.connect();
  const scheduler = new Scheduler({ consumer, producer: rt.producer, events: rt.events, logger: rt.logger });
  instrumentScheduler(scheduler, rt.registry);
  instrumentStageConsumer('scheduler', scheduler, rt.registry);
  let consuming = false;
  consumer.on(consumer.events.GROUP_JOIN, () => {
    consuming = true;
  });
  rt.readiness.consumer = () => (consuming ? null : 'not yet in the consumer group');
  rt.shutdown.add('stop scheduler', () => scheduler.stop());
  rt.shutdown.add('disconnect consumer', () => consumer.disconnect());
  rt.addFinalShutdownSteps();
  await scheduler.start();
  if (opts.ops !== false) await rt.startOps();
  rt.logger.info({ group: SCHEDULER_GROUP }, 'scheduler running');
  return { shutdown: rt.shutdown, close: () => rt.shutdown.run() };
}

export async function main(): Promise<void> {
  await serviceMain('scheduler', (config) => startScheduler(config));
}
