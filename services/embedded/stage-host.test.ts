import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { loadPostlineConfig } from '../../shared/config.js';
import { Shutdown } from '../../shared/lifecycle.js';
import type { RuntimeOptions } from '../../shared/service-runtime.js';
import { HOSTABLE_STAGES, StageListError, hostStages, parseStageList, parseStagesArgs } from './stage-host.js';
import { STAGES, processLayout } from './main.js';

const logger = pino({ level: 'silent' });
const config = loadPostlineConfig({ env: {} });

test('parseStageList: names in the order given; unknown, repeated or no names are refused', () => {
  assert.deepEqual(parseStageList('renderer,dispatcher, webhooks'), ['renderer', 'dispatcher', 'webhooks']);
  assert.throws(() => parseStageList('renderer,broker'), (e: Error) => e instanceof StageListError && /unknown stage broker/.test(e.message));
  assert.throws(() => parseStageList('renderer,renderer'), (e: Error) => e instanceof StageListError && /renderer named twice/.test(e.message));
  assert.throws(() => parseStageList(''), StageListError);
  assert.throws(() => parseStageList(undefined), StageListError);
});

test('parseStagesArgs: the stage list, and the second renderer\'s options, each only with the renderer hosted', () => {
  assert.deepEqual(parseStagesArgs(['renderer,dispatcher']), { names: ['renderer', 'dispatcher'], signalRenderBacklog: undefined, exitWhenIdleMs: undefined, preferredRenderer: false });
  assert.deepEqual(parseStagesArgs(['renderer,ingest', '--signal-render-backlog', '2000']).signalRenderBacklog, 2000);
  assert.deepEqual(parseStagesArgs(['renderer', '--exit-when-idle', '60000', '--preferred-renderer']), { names: ['renderer'], signalRenderBacklog: undefined, exitWhenIdleMs: 60_000, preferredRenderer: true });
  const refused = (argv: string[], re: RegExp) => assert.throws(() => parseStagesArgs(argv), (e: Error) => e instanceof StageListError && re.test(e.message), argv.join(' '));
  refused(['dispatcher', '--exit-when-idle', '100'], /--exit-when-idle needs the renderer/);
  refused(['ingest', '--preferred-renderer'], /--preferred-renderer needs the renderer/);
  refused(['renderer', '--signal-render-backlog', '0'], /--signal-render-backlog must be a positive whole number \(got "0"\)/);
  refused(['renderer', '--signal-render-backlog', 'lots'], /positive whole number/);
  refused(['renderer', '--no-such-flag'], /no-such-flag/);
  refused(['renderer', 'dispatcher'], /one comma-separated argument/);
});

test('every stage npm start runs can be hosted', () => {
  for (const s of STAGES) assert.ok(s in HOSTABLE_STAGES, s);
});

test('processLayout: analytics alone, every other stage in one process; inbound only with a return-path domain; one process per stage on request', () => {
  assert.deepEqual(processLayout({ perStage: false, inbound: true }), [
    { name: 'analytics', stages: ['analytics'] },
    { name: 'stages', stages: ['renderer', 'dispatcher', 'scheduler', 'ingest', 'inbound', 'tracker', 'smtp-gateway', 'webhooks'] },
  ]);
  assert.ok(!processLayout({ perStage: false, inbound: false })[1].stages.includes('inbound'));
  assert.deepEqual(processLayout({ perStage: true, inbound: true }).map((p) => p.stages), STAGES.map((s) => [s]));
  assert.ok(!processLayout({ perStage: true, inbound: false }).some((p) => p.name === 'inbound'));
});

/** Fake stages with real ordered shutdowns that record what happens to them. */
function recordingStages(log: string[], opts: { failing?: string; captured?: Record<string, RuntimeOptions> } = {}) {
  const make = (name: string) => async (_c: unknown, o: RuntimeOptions) => {
    if (opts.captured) opts.captured[name] = o;
    if (name === opts.failing) {
      // Fails after the others started, as a stage whose port is taken would.
      await new Promise((r) => setTimeout(r, 20));
      throw new Error(`${name} cannot start`);
    }
    log.push(`start ${name}`);
    const shutdown = new Shutdown(logger).add('stop', async () => {
      log.push(`stopping ${name}`);
      await new Promise((r) => setTimeout(r, 100));
      log.push(`stop ${name}`);
    });
    return { shutdown };
  };
  return Object.fromEntries(['a', 'b', 'c'].map((n) => [n, make(n)]));
}

test('hostStages: stops the stages together (no stage waits for another to drain), once, however often stop is called', async () => {
  const log: string[] = [];
  const host = await hostStages(['a', 'b', 'c'], config, { logger, stages: recordingStages(log) });
  assert.deepEqual([...log].sort(), ['start a', 'start b', 'start c']);
  log.length = 0;
  const [first, second] = await Promise.all([host.stop(), host.stop()]);
  assert.equal(first, true);
  assert.equal(second, true);
  assert.deepEqual(log.slice(0, 3).sort(), ['stopping a', 'stopping b', 'stopping c'], 'all three drain at once');
  assert.deepEqual(log.slice(3).sort(), ['stop a', 'stop b', 'stop c']);
});

test('hostStages: a stage that fails to start stops the ones that started, then the error surfaces', async () => {
  const log: string[] = [];
  await assert.rejects(hostStages(['a', 'b', 'c'], config, { logger, stages: recordingStages(log, { failing: 'b' }) }), /b cannot start/);
  assert.deepEqual(log.filter((l) => l.startsWith('stop ')).sort(), ['stop a', 'stop c']);
});

test('hostStages: a dead consumer is reported with the name of the stage it belongs to', async () => {
  const captured: Record<string, RuntimeOptions> = {};
  const dead: Array<[string, Record<string, string>]> = [];
  await hostStages(['a', 'c'], config, { logger, stages: recordingStages([], { captured }), onConsumerDead: (stage, problems) => dead.push([stage, problems]) });
  captured.c.onConsumerDead!({ consumer: 'crashed' });
  assert.deepEqual(dead, [['c', { consumer: 'crashed' }]]);
  // Without a handler the stages keep the runtime's default (only /healthz reports it).
  const plain: Record<string, RuntimeOptions> = {};
  await hostStages(['a'], config, { logger, stages: recordingStages([], { captured: plain }) });
  assert.equal(plain.a.onConsumerDead, undefined);
});
