/**
 * Fault test 4 — expiry: a relay that always answers 421. Messages are retried through the
 * tiers until their maximum age (shortened by configuration), then end `expired` — on
 * `email.dead` with code EXPIRED, never bounced, nothing added to suppression. Then the dead
 * letters are replayed with `postline dead replay` once the relay works again, and arrive.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { FaultPipeline } from './fault-pipeline.js';

const MESSAGES = 10;
const MAX_AGE_MS = 4000;
const TIERS = { POSTLINE_RETRY_DELAY1M_MS: '500', POSTLINE_RETRY_DELAY5M_MS: '1000', POSTLINE_RETRY_DELAY15M_MS: '1500', POSTLINE_RETRY_DELAY1H_MS: '1500' };
const LONGEST_TIER_MS = 1500;
/** Moving a due record back and attempting it takes a moment on a loaded machine. */
const SLACK_MS = 1000;
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');

let sink: SmtpSink;
let pipeline: FaultPipeline;
let relayWorks = false;

after(async () => {
  await pipeline?.close();
  await sink?.close();
});

test('421 forever: expired at the maximum age, dead-lettered, not suppressed; a replay after the relay recovers delivers them', async () => {
  sink = await startSmtpSink({ greetingDelay: false, script: () => (relayWorks ? 250 : { code: 421, message: '4.3.2 Service not available, try later' }) });
  pipeline = await FaultPipeline.start({
    stages: ['ingest', 'renderer', 'dispatcher', 'scheduler'],
    env: {
      POSTLINE_DISPATCHER_RELAY_HOST: sink.host,
      POSTLINE_DISPATCHER_RELAY_PORT: String(sink.port),
      POSTLINE_RETRY_MAX_AGE_TRANSACTIONAL_MS: String(MAX_AGE_MS),
      ...TIERS,
    },
  });
  const ids: string[] = [];
  for (let i = 0; i < MESSAGES; i++) ids.push(await pipeline.send({ from: 'app@sender.test', to: [`user${i}@example.org`], subject: `expiry ${i}`, text: 'hello' }));

  const expired = await pipeline.waitForEvents(MESSAGES, 'expired', 30_000);
  assert.deepEqual(new Set(expired.map((e) => e.messageId)), new Set(ids));
  for (const e of expired) {
    const age = Date.parse(e.at) - Date.parse(e.acceptedAt!);
    // Expired at the attempt whose next wait would pass the maximum age (within one tier before
    // it), or at the first attempt after it (late by the scheduler's and dispatcher's latency).
    assert.ok(age >= MAX_AGE_MS - LONGEST_TIER_MS && age <= MAX_AGE_MS + SLACK_MS, `expired at age ${age} ms`);
    assert.match(e.reason ?? '', /max age for transactional/);
    assert.equal(e.smtp?.code, 421);
  }
  const attempts = pipeline.events('deferred').filter((e) => e.messageId === ids[0]).length + 1;
  assert.ok(attempts >= 3, `retried through the tiers (${attempts} attempts)`);
  const dead = pipeline.deadLetters().filter((d) => d.code === 'EXPIRED');
  assert.deepEqual(new Set(dead.map((d) => d.messageId)), new Set(ids));
  assert.equal(pipeline.events('bounced').length, 0, 'expired is not a bounce');
  assert.equal(pipeline.suppressions(), 0, 'nothing added to suppression');
  assert.equal(sink.messages.length, 0);

  relayWorks = true;
  const env = { ...process.env, POSTLINE_KAFKA_BROKERS: pipeline.broker.bootstrap, POSTLINE_LOG_LEVEL: 'warn' };
  const out = await promisify(execFile)(process.execPath, [path.join(ROOT, 'services', 'postline.mjs'), 'dead', 'replay', '--since', '5m', '--code', 'EXPIRED', '--json'], { env, cwd: ROOT });
  assert.equal(out.stdout.trim().split('\n').length, MESSAGES);
  const sent = await pipeline.waitForEvents(MESSAGES, 'sent', 20_000);
  assert.deepEqual(new Set(sent.map((e) => e.messageId)), new Set(ids));
  for (const e of sent) {
    const last = expired.find((x) => x.messageId === e.messageId)!;
    assert.equal(e.attempt, last.attempt! + 1, 'the replay is the next attempt');
  }
  await sink.waitForMessages(MESSAGES);
});
