/**
 * Dispatch records keyed by site, through the real renderer (startRenderer with a routing
 * file), the embedded broker and the fake internet's DNS: the domains hosted at one site land
 * on one partition, another site's elsewhere, a hot site on its shards; a DNS failure keys by
 * domain without holding or failing the message; relay-pool messages keep domain keys.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { startTestBroker, tempDir, uniqueName, waitFor, type TestBroker } from '../helpers/broker.js';
import { TopicReader } from '../helpers/topic-reader.js';
import { startFakeInternet, type FakeInternet } from '../helpers/fake-internet/index.js';
import { loadPostlineConfig } from '../../shared/config.js';
import { ConfigError } from '../../shared/config-loader.js';
import { Topics } from '../../shared/topics.js';
import { EmailRequestedContract, type EmailRequested } from '../../shared/contracts/email-requested.js';
import type { EmailReadyForDispatch } from '../../shared/contracts/email-ready-for-dispatch.js';
import { shardOf } from '../../services/dispatcher/shaping/site-shards.js';
import { startRenderer, type RunningRenderer } from '../../services/renderer/main.js';
import { emailRequest } from './email-requests.js';

const silent = pino({ level: 'silent' });
const DISPATCH = Topics.dispatch('transactional');
const PARTITIONS = 8;
const ALPHA = Array.from({ length: 50 }, (_, i) => `shop${i}.alpha-customers.test`);
const BETA = Array.from({ length: 50 }, (_, i) => `firm${i}.beta-customers.test`);
const GMAIL = Array.from({ length: 6 }, (_, i) => `team${i}.gsuite.test`);

let net: FakeInternet;
let broker: TestBroker;
let renderer: RunningRenderer;
let reader: TopicReader;
let producer: Producer;
let dir: string;

interface Dispatched {
  record: EmailReadyForDispatch;
  key: string;
  partition: number;
}

const dispatched = (): Dispatched[] =>
  reader.records
    .filter((r) => r.topic === DISPATCH && r.message.value)
    .map((r) => ({ record: JSON.parse(r.message.value!.toString()) as EmailReadyForDispatch, key: r.message.key!.toString(), partition: r.partition }));

async function send(reqs: EmailRequested[]): Promise<void> {
  await producer.send({ topic: Topics.requested, acks: -1, messages: reqs.map((r) => ({ key: r.messageId, value: EmailRequestedContract.encode(r) })) });
}

/** The records of these messages, once all `n` are there. */
async function recordsOf(ids: ReadonlySet<string>, n: number): Promise<Dispatched[]> {
  const mine = () => dispatched().filter((d) => ids.has(d.record.messageId));
  await waitFor(() => mine().length >= n, 30_000, `${n} dispatch records`);
  return mine();
}

before(async () => {
  net = await startFakeInternet();
  for (const d of ALPHA) net.dns.mx(d, [{ exchange: 'mx2.alpha-hosting.test', priority: 10 }, { exchange: 'mx1.alpha-hosting.test', priority: 10 }]);
  for (const d of BETA) net.dns.mx(d, [{ exchange: 'inbound.beta-mail.test', priority: 5 }]);
  for (const d of GMAIL) net.dns.mx(d, [{ exchange: 'aspmx.l.google.com', priority: 1 }, { exchange: 'alt1.aspmx.l.google.com', priority: 5 }]);
  net.dns.mx('down.test', [{ exchange: 'mx.down.test', priority: 10 }]);
  net.dns.behave('down.test', 'servfail');
  net.dns.mx('slow.test', [{ exchange: 'mx.slow.test', priority: 10 }]);
  net.dns.behave('slow.test', 'timeout');
  dir = tempDir('postline-site-keys-');
  const routesFile = path.join(dir, 'routes.yaml');
  fs.writeFileSync(
    routesFile,
    [
      'dns:',
      `  servers: ['${net.dns.servers[0]}']`,
      '  timeoutMs: 5000',
      'routes:',
      '  direct: { kind: mx }',
      '  smarthost: { kind: relay }',
      'pools:',
      '  default: { route: direct, addresses: [{ address: 127.0.0.2, ehlo: mta2.sender.test }] }',
      '  relayed: { route: smarthost }',
      'choose:',
      '  tenants: { legacy: relayed }',
      '',
    ].join('\n'),
  );
  const shapingFile = path.join(dir, 'shaping.yaml');
  fs.writeFileSync(shapingFile, 'sites:\n  gmail: { shards: 4 }\n');
  broker = await startTestBroker();
  const config = loadPostlineConfig({
    env: {},
    overrides: {
      'log.level': 'silent',
      'kafka.brokers': [broker.bootstrap],
      'kafka.partitions': PARTITIONS,
      'ops.host': '127.0.0.1',
      'ops.port': 0,
      'renderer.concurrency': 16,
      'dispatcher.routesFile': routesFile,
      'dispatcher.shapingFile': shapingFile,
    },
  });
  // The DNS server's timeout behaviour answers nothing: the renderer must not wait for the resolver's 5 s.
  renderer = await startRenderer(config, { logger: silent, groupId: uniqueName('renderer'), siteKeyWaitMs: 300 });
  const kafka = new Kafka({ brokers: [broker.bootstrap], clientId: 'site-keys-test', logLevel: logLevel.NOTHING });
  producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  reader = await new TopicReader(broker.bootstrap, [DISPATCH]).start();
});

after(async () => {
  await reader?.stop();
  await producer?.disconnect();
  await renderer?.close();
  await broker?.destroy();
  await net?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('dispatch records keyed by site', () => {
  test('50 domains at one site land on one partition, another site\'s 50 elsewhere, a hot site on its shards', async () => {
    const reqs = [...ALPHA, ...BETA, ...GMAIL].map((d) => emailRequest({ to: [{ email: `someone@${d}` }] }));
    await send(reqs);
    const records = await recordsOf(new Set(reqs.map((r) => r.messageId)), reqs.length);
    const at = (domains: string[]) => records.filter((r) => domains.includes(r.record.domain));

    const alpha = at(ALPHA);
    assert.equal(alpha.length, 50);
    assert.deepEqual(new Set(alpha.map((r) => r.key)), new Set(['alpha-hosting.test']));
    const alphaPartitions = new Set(alpha.map((r) => r.partition));
    assert.equal(alphaPartitions.size, 1, 'every domain of the site on one partition');

    const beta = at(BETA);
    assert.deepEqual(new Set(beta.map((r) => r.key)), new Set(['beta-mail.test']));
    const betaPartitions = new Set(beta.map((r) => r.partition));
    assert.equal(betaPartitions.size, 1);
    assert.notDeepEqual(betaPartitions, alphaPartitions, 'another site elsewhere');

    // gmail (aspmx.l.google.com) has 4 shards: each message's record on its shard's one partition.
    const gmail = at(GMAIL);
    for (const r of gmail) assert.equal(r.key, `gmail#${shardOf(r.record.messageId, 4)}`);
    const byShard = new Map<string, Set<number>>();
    for (const r of gmail) byShard.set(r.key, (byShard.get(r.key) ?? new Set()).add(r.partition));
    for (const [key, partitions] of byShard) assert.equal(partitions.size, 1, `${key} on one partition`);

    // Records stay one per domain, with their domain and envelope.
    for (const r of records) assert.equal(r.record.envelope.to[0], `someone@${r.record.domain}`);
    // Keying reads the cached MX answer: one MX query per domain, not one per message.
    assert.equal(net.dns.queriesFor(ALPHA[0], 'MX').length, 1);
  });

  test('one message to several domains: one record per domain, each keyed by its site', async () => {
    const req = emailRequest({ to: [{ email: `a@${ALPHA[1]}` }, { email: `b@${ALPHA[2]}` }, { email: `c@${BETA[3]}` }, { email: `d@${GMAIL[0]}` }] });
    await send([req]);
    const records = await recordsOf(new Set([req.messageId]), 4);
    const keyOf = new Map(records.map((r) => [r.record.domain, r.key]));
    assert.deepEqual(Object.fromEntries(keyOf), {
      [ALPHA[1]]: 'alpha-hosting.test',
      [ALPHA[2]]: 'alpha-hosting.test',
      [BETA[3]]: 'beta-mail.test',
      [GMAIL[0]]: `gmail#${shardOf(req.messageId, 4)}`,
    });
  });

  test('DNS failing or silent: the record is keyed by its domain, produced without waiting for the resolver, and counted', async () => {
    const down = emailRequest({ to: [{ email: 'x@down.test' }] });
    const slow = emailRequest({ to: [{ email: 'y@slow.test' }, { email: `z@${BETA[4]}` }] });
    // A monotonic clock: the wall clock of a VM can step by seconds mid-test.
    const started = performance.now();
    await send([down, slow]);
    const records = await recordsOf(new Set([down.messageId, slow.messageId]), 3);
    const elapsed = Math.round(performance.now() - started);
    const keyOf = new Map(records.map((r) => [r.record.domain, r.key]));
    assert.equal(keyOf.get('down.test'), 'down.test');
    assert.equal(keyOf.get('slow.test'), 'slow.test');
    assert.equal(keyOf.get(BETA[4]), 'beta-mail.test');
    // The resolver would wait 5 s per query for slow.test; the renderer keys it after 300 ms.
    assert.ok(elapsed < 4_000, `produced after ${elapsed} ms`);
    const metrics = await (await fetch(`${renderer.opsAddress}/metrics`)).text();
    assert.match(metrics, /postline_renderer_site_keys_total\{outcome="dns-failed"[^}]*\} [1-9]/);
    assert.match(metrics, /postline_renderer_site_keys_total\{outcome="timeout"[^}]*\} [1-9]/);
    assert.match(metrics, /postline_renderer_site_keys_total\{outcome="site"[^}]*\} [1-9]/);
  });

  test('messages of a relay pool keep their domain as the key', async () => {
    const req = emailRequest({ tenant: 'legacy', to: [{ email: `a@${ALPHA[5]}` }, { email: `b@${BETA[5]}` }] });
    await send([req]);
    const records = await recordsOf(new Set([req.messageId]), 2);
    for (const r of records) assert.equal(r.key, r.record.domain);
  });
});

test('a bad routing file or shaping file refuses start-up, naming the problem', async () => {
  const bad = path.join(dir, 'bad-routes.yaml');
  fs.writeFileSync(bad, 'routes: {}\npools: { default: { route: nowhere } }\n');
  const badShaping = path.join(dir, 'bad-shaping.yaml');
  fs.writeFileSync(badShaping, 'sites:\n  gmail: { shards: 0 }\n');
  const base = { 'log.level': 'silent', 'kafka.brokers': [broker.bootstrap] };
  const routes = loadPostlineConfig({ env: {}, overrides: { ...base, 'dispatcher.routesFile': bad } });
  await assert.rejects(startRenderer(routes, { logger: silent, ops: false }), (err: unknown) => err instanceof ConfigError && /pools\.default\.route: no route named "nowhere"/.test(err.message));
  const shaping = loadPostlineConfig({ env: {}, overrides: { ...base, 'dispatcher.routesFile': path.join(dir, 'routes.yaml'), 'dispatcher.shapingFile': badShaping } });
  await assert.rejects(startRenderer(shaping, { logger: silent, ops: false }), (err: unknown) => err instanceof ConfigError && /sites\.gmail\.shards/.test(err.message));
});
