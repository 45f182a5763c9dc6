/**
 * Fault test 3 — transient failures: a relay that answers 451 to the first two attempts for
 * every recipient. Each message arrives at the third attempt, after waiting out the (shortened,
 * by configuration) 1m and 5m tiers, with a `deferred` event for each failed attempt carrying the
 * reason and the next attempt time. The whole pipeline runs as processes.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { waitFor } from '../helpers/broker.js';
import { FaultPipeline } from './fault-pipeline.js';

const MESSAGES = 20;
const TIER_1M_MS = 700;
const TIER_5M_MS = 1400;

let sink: SmtpSink;
let pipeline: FaultPipeline;

after(async () => {
  await pipeline?.close();
  await sink?.close();
});

test('451 twice, then 250: every message arrives at attempt 3 with a deferred event per failed attempt', async () => {
  sink = await startSmtpSink({ greetingDelay: false, script: (_rcpt, ctx) => (ctx.attempt <= 2 ? { code: 451, message: '4.7.1 Greylisted, please try again' } : 250) });
  pipeline = await FaultPipeline.start({
    stages: ['ingest', 'renderer', 'dispatcher', 'scheduler'],
    env: {
      POSTLINE_DISPATCHER_RELAY_HOST: sink.host,
      POSTLINE_DISPATCHER_RELAY_PORT: String(sink.port),
      POSTLINE_RETRY_DELAY1M_MS: String(TIER_1M_MS),
      POSTLINE_RETRY_DELAY5M_MS: String(TIER_5M_MS),
      POSTLINE_RETRY_DELAY15M_MS: '3000',
      POSTLINE_RETRY_DELAY1H_MS: '5000',
    },
  });
  const ids: string[] = [];
  for (let i = 0; i < MESSAGES; i++) {
    ids.push(await pipeline.send({ from: 'app@sender.test', to: [`user${i}@example.org`], subject: `transient ${i}`, text: 'hello' }));
  }
  const sent = await pipeline.waitForEvents(MESSAGES, 'sent', 60_000);
  assert.deepEqual(new Set(sent.map((e) => e.messageId)), new Set(ids));
  assert.ok(sent.every((e) => e.attempt === 3), `attempts: ${sent.map((e) => e.attempt).join(',')}`);
  for (let i = 0; i < MESSAGES; i++) {
    assert.equal(sink.messagesTo(`user${i}@example.org`).length, 1, `user${i} got it once`);
    assert.equal(sink.rcptAttempts.get(`user${i}@example.org`), 3);
  }
  const deferred = pipeline.events('deferred');
  for (const id of ids) {
    const mine = deferred.filter((e) => e.messageId === id).sort((a, b) => a.attempt! - b.attempt!);
    assert.deepEqual(mine.map((e) => e.attempt), [1, 2], `deferred events of ${id}`);
    for (const e of mine) {
      assert.match(e.reason ?? '', /451 4\.7\.1 Greylisted/);
      assert.equal(e.smtp?.code, 451);
      const wait = Date.parse(e.nextAttemptAt!) - Date.parse(e.at);
      const tier = e.attempt === 1 ? TIER_1M_MS : TIER_5M_MS;
      assert.ok(Math.abs(wait - tier) < 50, `attempt ${e.attempt} waits its tier (${wait} ms)`);
    }
    // The retry was not sent before its time.
    const third = sent.find((e) => e.messageId === id)!;
    assert.ok(Date.parse(third.at) >= Date.parse(mine[1].nextAttemptAt!), 'attempt 3 not before its not-before time');
  }
  assert.equal(pipeline.events('bounced').length + pipeline.events('expired').length + pipeline.events('failed').length, 0);
  await waitFor(() => pipeline.deadLetters().length === 0, 1000, 'no dead letters');
});
