/**
 * A dispatcher under test: a fresh embedded broker, a scripted SMTP sink as the relay, the
 * dispatcher started in-process against both, and a reader on events, retry and dead topics.
 */
import { Kafka, logLevel, type Producer } from 'kafkajs';
import pino from 'pino';
import { PRIORITIES, loadPostlineConfig, type PostlineConfig } from '../../shared/config.js';
import { EmailEventContract, type EmailEvent, type EventType } from '../../shared/contracts/email-event.js';
import { EmailReadyForDispatchContract, type EmailReadyForDispatch } from '../../shared/contracts/email-ready-for-dispatch.js';
import { RETRY_TIERS, Topics, type RetryTier } from '../../shared/topics.js';
import { startDispatcher, type DispatcherOptions, type RunningDispatcher } from '../../services/dispatcher/main.js';
import { startTestBroker, uniqueName, waitFor, type TestBroker } from '../helpers/broker.js';
import { startSmtpSink, type SmtpSink, type SmtpSinkOptions } from '../helpers/smtp-sink.js';
import { TopicReader } from '../helpers/topic-reader.js';

export interface Harness {
  broker: TestBroker;
  sink: SmtpSink;
  config: PostlineConfig;
  dispatcher: RunningDispatcher;
  reader: TopicReader;
  producer: Producer;
  /** Produces records to their priority's dispatch topic, keyed by domain. */
  produce(records: EmailReadyForDispatch[]): Promise<void>;
  events(type?: EventType): EmailEvent[];
  waitForEvents(n: number, type: EventType, timeoutMs?: number): Promise<EmailEvent[]>;
  /** Records on email.retry.<priority>.<tier> (any priority) (default 1m). */
  retries(tier?: RetryTier): EmailReadyForDispatch[];
  /** Stops the dispatcher and starts a new one with the same configuration (same groups), or with `overrides`. */
  restart(overrides?: Record<string, unknown>): Promise<void>;
  /** A sample of the dispatcher's metrics: the value of the first series whose labels include all of `labels`. */
  metric(name: string, ...labels: string[]): Promise<number>;
  close(): Promise<void>;
}

/**
 * `setup` runs once the sink is up and before the dispatcher starts; the overrides it returns
 * are applied last (e.g. a relay port in front of the sink, fallback hosts).
 */
export async function startHarness(
  sinkOpts: SmtpSinkOptions = {},
  overrides: Record<string, unknown> = {},
  setup?: (sink: SmtpSink) => Promise<Record<string, unknown>>,
  dispatcherOpts: Pick<DispatcherOptions, 'shaper' | 'ops'> = {},
): Promise<Harness> {
  const broker = await startTestBroker();
  const sink = await startSmtpSink({ greetingDelay: false, ...sinkOpts });
  const late = setup ? await setup(sink) : {};
  let config = loadPostlineConfig({
    env: {},
    overrides: {
      'kafka.brokers': [broker.bootstrap],
      'kafka.partitions': 2,
      'log.level': 'silent',
      'dispatcher.groupId': uniqueName('dispatcher'),
      'dispatcher.relay.host': sink.host,
      'dispatcher.relay.port': sink.port,
      'dispatcher.relay.ignoreTLS': true,
      'dispatcher.fleet.warmConnections': 1,
      'dispatcher.connectionTimeoutMs': 2000,
      'dispatcher.greetingTimeoutMs': 2000,
      'dispatcher.socketTimeoutMs': 5000,
      'dispatcher.fetchMaxWaitMs': 100,
      ...overrides,
      ...late,
    },
  });
  const logger = pino({ level: process.env.LOG_LEVEL ?? 'silent' });
  let dispatcher = await startDispatcher(config, { logger, ops: false, ...dispatcherOpts });
  const reader = await new TopicReader(broker.bootstrap, [Topics.events, ...PRIORITIES.flatMap((p) => RETRY_TIERS.map((t) => Topics.retryFor(p, t))), Topics.dead]).start();
  const producer = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING }).producer();
  await producer.connect();

  const events = (type?: EventType): EmailEvent[] =>
    reader.records
      .filter((r) => r.topic === Topics.events)
      .map((r) => EmailEventContract.decode(r.message.value))
      .filter((e) => !type || e.type === type);

  return {
    broker,
    sink,
    get config() {
      return config;
    },
    get dispatcher() {
      return dispatcher;
    },
    reader,
    producer,
    async produce(records) {
      const byTopic = new Map<string, EmailReadyForDispatch[]>();
      for (const r of records) byTopic.set(Topics.dispatch(r.priority), [...(byTopic.get(Topics.dispatch(r.priority)) ?? []), r]);
      await producer.sendBatch({
        acks: -1,
        topicMessages: [...byTopic].map(([topic, rs]) => ({ topic, messages: rs.map((r) => ({ key: r.domain, value: EmailReadyForDispatchContract.encode(r) })) })),
      });
    },
    events,
    async waitForEvents(n, type, timeoutMs = 15_000) {
      return waitFor(() => (events(type).length >= n ? events(type) : undefined), timeoutMs, `${n} ${type} events (have ${events(type).length})`);
    },
    retries: (tier = '1m') => reader.records.filter((r) => PRIORITIES.some((p) => r.topic === Topics.retryFor(p, tier))).map((r) => EmailReadyForDispatchContract.decode(r.message.value)),
    async restart(more) {
      await dispatcher.close();
      if (more) config = loadPostlineConfig({ env: {}, overrides: { ...flatten(config), ...more } });
      dispatcher = await startDispatcher(config, { logger, ops: false, ...dispatcherOpts });
    },
    async metric(name, ...labels) {
      const text = await dispatcher.registry.metrics();
      const line = text.split('\n').find((l) => (l.startsWith(`${name}{`) || l.startsWith(`${name} `)) && labels.every((x) => l.includes(x)));
      return line ? Number(line.split(' ').at(-1)) : Number.NaN;
    },
    async close() {
      await dispatcher.close();
      await reader.stop();
      await producer.disconnect();
      await sink.close();
      await broker.destroy();
    },
  };
}

/** A config object as dotted-path overrides (arrays kept whole). */
function flatten(obj: object, prefix = ''): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) {
    const path = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === 'object' && !Array.isArray(v)) Object.assign(out, flatten(v as object, path));
    else out[path] = v;
  }
  return out;
}
