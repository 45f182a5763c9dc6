/**
 * Limits exact across priorities (issue 12): three dispatchers (each its own dispatcher, shaper
 * and fleets, as three processes would be) in the three priority groups; partition p of every
 * dispatch topic is owned by one of them in every group, so a site's transactional and bulk
 * mail go through the same (source, site) budget and the provider never sees more than the
 * site's connection limit. Before the aligned assigner each group assigned on its own.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AssignerProtocol, Kafka, logLevel, type Admin, type Producer } from 'kafkajs';
import pino from 'pino';
import { PRIORITIES, loadPostlineConfig, type Priority } from '../../shared/config.js';
import { EmailReadyForDispatchContract } from '../../shared/contracts/email-ready-for-dispatch.js';
import { Topics } from '../../shared/topics.js';
import { startDispatcher, type RunningDispatcher } from '../../services/dispatcher/main.js';
import { startTestBroker, uniqueName, waitFor, type TestBroker } from '../helpers/broker.js';
import { startFakeInternet, type FakeInternet, type FakeSmtpServer } from '../helpers/fake-internet/index.js';
import { recordFor } from '../dispatcher/fleet-support.js';
import { writeDeliveryFiles } from './delivery-files.js';

/** Three sites, each on its own partition: their owners differ, and each one's priorities must agree. */
const SITES = ['one.test', 'two.test', 'three.test'];
const CONNECTIONS = 3;
const PARTITIONS = 6;
const DISPATCHERS = 3;

let broker: TestBroker;
let net: FakeInternet;
const mx: FakeSmtpServer[] = [];
let dir: string;
let admin: Admin;
let producer: Producer;
let groupId: string;
const dispatchers: RunningDispatcher[] = [];

before(async () => {
  broker = await startTestBroker();
  net = await startFakeInternet();
  // Each reply takes a while, so that a backlog keeps every connection the dispatchers may open
  // busy. Plain text: the fake provider counts a STARTTLS connection until its server-side TLS
  // socket is torn down, some milliseconds after the TCP connection closed (the dispatcher's
  // replacement for a connection retired at its quota is counted alongside it then).
  for (const site of SITES) mx.push(await net.smtp({ mxFor: [site], script: { replyDelayMs: 15 }, verifyDkim: false, tls: 'none' }));
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'postline-aligned-'));
  const files = writeDeliveryFiles(dir, net, { sites: Object.fromEntries(SITES.map((site) => [site, { maxConnections: CONNECTIONS, messagesPerConnection: 10, perSecond: null }])) });
  groupId = uniqueName('dispatcher');
  const logger = pino({ level: process.env.LOG_LEVEL ?? 'silent' });
  for (let i = 0; i < DISPATCHERS; i++) {
    const config = loadPostlineConfig({
      env: {},
      overrides: {
        'kafka.brokers': [broker.bootstrap],
        'kafka.partitions': PARTITIONS,
        'log.level': 'silent',
        'dispatcher.groupId': groupId,
        'dispatcher.fetchMaxWaitMs': 100,
        // No priority reserves: each priority may use the site's every connection, so two owners of
        // one partition (one per priority) could open twice the limit.
        'dispatcher.fleet.reserveCritical': 0,
        'dispatcher.fleet.reserveTransactional': 0,
        ...files,
      },
    });
    dispatchers.push(await startDispatcher(config, { logger, ops: false }));
  }
  const kafka = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
  admin = kafka.admin();
  await admin.connect();
  producer = kafka.producer();
  await producer.connect();
});

after(async () => {
  await producer?.disconnect();
  await admin?.disconnect();
  for (const d of dispatchers) await d.close();
  await net?.close();
  await broker?.destroy();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** Owner (dispatcher index, by the process id in its member metadata) of each partition of the priority's dispatch topic, once its group is stable with every dispatcher. */
async function owners(p: Priority): Promise<string[] | undefined> {
  const { groups } = await admin.describeGroups([`${groupId}-${p}`]);
  const g = groups[0];
  if (g.state !== 'Stable' || g.members.length !== DISPATCHERS) return undefined;
  const out: string[] = [];
  for (const m of g.members) {
    const processId = AssignerProtocol.MemberMetadata.decode(m.memberMetadata)?.userData.toString('utf8');
    const owner = String(dispatchers.findIndex((d) => d.processId === processId));
    const a = AssignerProtocol.MemberAssignment.decode(m.memberAssignment);
    for (const part of a?.assignment[Topics.dispatch(p)] ?? []) out[part] = owner;
  }
  return out.filter(Boolean).length === PARTITIONS ? out : undefined;
}

test('partition p of every priority\'s dispatch topic belongs to the same dispatcher', async () => {
  const all = await waitFor(async () => {
    const o = await Promise.all(PRIORITIES.map((p) => owners(p)));
    return o.every(Boolean) ? (o as string[][]) : undefined;
  }, 30_000, 'three stable groups of three dispatchers');
  assert.ok(all[0].every((o) => o !== '-1'), `every owner is one of the dispatchers: ${all[0].join(',')}`);
  assert.deepEqual(all[1], all[0], 'transactional as critical');
  assert.deepEqual(all[2], all[0], 'bulk as critical');
  assert.equal(new Set(all[0]).size, DISPATCHERS, 'every dispatcher owns partitions');
});

test(`transactional and bulk mail to three sites: no provider ever sees more than its ${CONNECTIONS} connections`, async () => {
  const PER = 40;
  const records = SITES.flatMap((site) =>
    (['transactional', 'bulk'] as const).flatMap((priority) => Array.from({ length: PER }, (_, i) => recordFor([`${priority}-${i}@${site}`], { priority, pool: 'default' }))),
  );
  // Keyed by the site (as the renderer keys mx-route records); site i on partition i of each topic.
  await producer.sendBatch({
    acks: -1,
    topicMessages: (['transactional', 'bulk'] as const).map((p) => ({
      topic: Topics.dispatch(p),
      messages: records.filter((r) => r.priority === p).map((r) => ({ key: r.domain, partition: SITES.indexOf(r.domain), value: EmailReadyForDispatchContract.encode(r) })),
    })),
  });
  const delivered = (): number => mx.reduce((n, m) => n + m.messages.length, 0);
  await waitFor(() => delivered() >= records.length || undefined, 60_000, `${records.length} messages at the providers (have ${delivered()})`);
  assert.deepEqual(mx.map((m) => m.messages.length), SITES.map(() => 2 * PER));
  const most = mx.map((m) => m.maxConcurrentConnections());
  assert.ok(most.every((n) => n <= CONNECTIONS), `connections open at once per site: ${most.join(', ')} (limit ${CONNECTIONS})`);
  assert.ok(mx.every((m) => m.connections() >= CONNECTIONS), 'each site used several connections');
});
