/**
 * The broker as its own process, killed with SIGKILL while kafkajs producers write with
 * acks=-1 and a group commits offsets. After a restart every acknowledged record is readable
 * at its offset, in order, committed offsets are intact, producer ids are never reused and
 * idempotent retries are still recognised. The same promises hold across a clean restart.
 */
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { spawnBrokerProcess, tempDir, uniqueName, waitFor, type BrokerProcess } from '../helpers/broker.js';
import { consumeAll, testKafka } from './support/kafkajs-clients.js';
import { API, WireClient, initProducerIdBody, parseInitProducerIdV0, parseProduceV3, produceBody } from './support/wire-client.js';
import { encodeBatch } from './support/batch-encoder.js';

const dirs: string[] = [];
const brokers: BrokerProcess[] = [];
const cleanups: Array<() => Promise<void>> = [];

after(async () => {
  for (const c of cleanups) await c().catch(() => undefined);
  for (const b of brokers) await b.kill('SIGKILL');
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

async function start(dataDir: string): Promise<BrokerProcess> {
  const b = await spawnBrokerProcess({ dataDir });
  brokers.push(b);
  return b;
}

/** A client that gives up at once when the broker is gone (the test kills it on purpose). */
function fragileKafka(bootstrap: string, retries = 0): Kafka {
  return new Kafka({ brokers: [bootstrap], clientId: uniqueName('fragile'), logLevel: logLevel.NOTHING, retry: { retries, initialRetryTime: 50, maxRetryTime: 200 }, connectionTimeout: 1000 });
}

async function producerId(bootstrap: string): Promise<number> {
  const w = await WireClient.connect(bootstrap);
  try {
    const r = parseInitProducerIdV0(await w.request(API.InitProducerId, 0, initProducerIdBody()));
    assert.equal(r.errorCode, 0);
    return r.producerId;
  } finally {
    w.close();
  }
}

interface Acked {
  partition: number;
  offset: number;
  value: string;
}

describe('crash recovery (SIGKILL)', () => {
  test('acknowledged records, committed offsets, producer ids and idempotence survive a SIGKILL mid-write', async () => {
    const dataDir = tempDir('postline-crash-');
    dirs.push(dataDir);
    let broker = await start(dataDir);
    const topic = uniqueName('crash');
    const groupId = uniqueName('crash-group');
    const setup = testKafka(broker.bootstrap);
    const admin = setup.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 3 }] });

    // An idempotent batch whose retry must still be recognised after the crash.
    const pidBefore = await producerId(broker.bootstrap);
    const idem = encodeBatch({ records: [{ value: 'idempotent' }], producerId: pidBefore, producerEpoch: 0, baseSequence: 0 });
    const w = await WireClient.connect(broker.bootstrap);
    const [idemFirst] = parseProduceV3(await w.request(API.Produce, 3, produceBody(topic, 2, Buffer.from(idem))));
    w.close();
    assert.equal(idemFirst.errorCode, 0);

    // Writers: one plain and one idempotent kafkajs producer, acks=-1, recording what was acked.
    const acked: Acked[] = [{ partition: 2, offset: idemFirst.baseOffset, value: 'idempotent' }];
    let writing = true;
    const writers = [false, true].map(async (idempotent, wi) => {
      const p: Producer = fragileKafka(broker.bootstrap, idempotent ? 1 : 0).producer({ idempotent, maxInFlightRequests: idempotent ? 1 : 5 });
      cleanups.push(() => p.disconnect());
      await p.connect();
      let i = 0;
      while (writing) {
        const values = Array.from({ length: 5 }, (_, k) => `w${wi}-${i}-${k}`);
        const partition = i++ % 3;
        try {
          const [r] = await p.send({ topic, acks: -1, messages: values.map((value) => ({ partition, value })) });
          values.forEach((value, k) => acked.push({ partition, offset: Number(r.baseOffset) + k, value }));
        } catch {
          return; // the broker is gone
        }
      }
    });

    // A group member committing as it goes; remember the last commit the broker acknowledged.
    const lastCommitted = new Map<number, number>();
    const committer = fragileKafka(broker.bootstrap).consumer({ groupId, maxWaitTimeInMs: 100, sessionTimeout: 6000, heartbeatInterval: 300 });
    cleanups.push(() => committer.disconnect());
    await committer.connect();
    await committer.subscribe({ topic, fromBeginning: true });
    await committer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        const next = Number(message.offset) + 1;
        if (next % 7 !== 0) return;
        try {
          await committer.commitOffsets([{ topic, partition, offset: String(next) }]);
          lastCommitted.set(partition, Math.max(lastCommitted.get(partition) ?? 0, next));
        } catch {
          // the broker is gone
        }
      },
    });

    await waitFor(() => acked.length >= 400 && lastCommitted.size === 3, 30_000, 'writes and commits under way');
    await admin.disconnect();
    const killed = await broker.kill('SIGKILL');
    assert.equal(killed.signal, 'SIGKILL');
    writing = false;
    await Promise.all(writers);
    const committedAtCrash = new Map(lastCommitted);
    const ackedAtCrash = [...acked];

    broker = await start(dataDir);
    assert.match(broker.output(), /"recovered":true/, 'the restart noticed the unclean shutdown');
    const kafka = testKafka(broker.bootstrap);

    // Every acknowledged record is there, at its offset, and each partition is gap-free.
    const total = await (async () => {
      const a = kafka.admin();
      await a.connect();
      const offs = await a.fetchTopicOffsets(topic);
      const fetched = await a.fetchOffsets({ groupId, topics: [topic] });
      await a.disconnect();
      for (const [partition, offset] of committedAtCrash) {
        const stored = Number(fetched[0].partitions.find((p) => p.partition === partition)!.offset);
        assert.ok(stored >= offset, `partition ${partition}: committed ${offset} was acknowledged, ${stored} survived`);
      }
      return offs.reduce((n, o) => n + Number(o.high), 0);
    })();
    assert.ok(total >= ackedAtCrash.length);
    const records = await consumeAll(kafka, topic, total);
    const byKey = new Map(records.map((r) => [`${r.partition}:${r.offset}`, r.value]));
    const lost = ackedAtCrash.filter((a) => byKey.get(`${a.partition}:${a.offset}`) !== a.value);
    assert.deepEqual(lost, [], 'acknowledged records missing or changed after the crash');
    for (const p of [0, 1, 2]) {
      const offsets = records.filter((r) => r.partition === p).map((r) => r.offset);
      assert.deepEqual(offsets, [...offsets.keys()], `partition ${p} is read in order without gaps`);
    }

    // Producer ids are never handed out twice, and the idempotent retry is still a duplicate.
    assert.ok((await producerId(broker.bootstrap)) > pidBefore);
    const w2 = await WireClient.connect(broker.bootstrap);
    const [retry] = parseProduceV3(await w2.request(API.Produce, 3, produceBody(topic, 2, Buffer.from(idem))));
    w2.close();
    assert.deepEqual([retry.errorCode, retry.baseOffset], [0, idemFirst.baseOffset]);
    await broker.kill('SIGTERM');
  });
});

describe('clean restart', () => {
  test('committed offsets, producer ids and idempotent state survive SIGTERM and restart', async () => {
    const dataDir = tempDir('postline-restart-');
    dirs.push(dataDir);
    let broker = await start(dataDir);
    const topic = uniqueName('restart');
    const groupId = uniqueName('restart-group');
    let kafka = testKafka(broker.bootstrap);
    const p = kafka.producer();
    await p.connect();
    await p.send({ topic, acks: -1, messages: Array.from({ length: 10 }, (_, i) => ({ value: `v${i}` })) });
    await p.disconnect();
    const c = kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
    await c.connect();
    await c.subscribe({ topic, fromBeginning: true });
    let seen = 0;
    await c.run({ autoCommit: false, eachMessage: async () => void seen++ });
    await waitFor(() => seen === 10, 10_000, 'ten records');
    await c.commitOffsets([{ topic, partition: 0, offset: '6' }]);
    await c.disconnect();
    const pid = await producerId(broker.bootstrap);
    const idem = encodeBatch({ records: [{ value: 'once' }], producerId: pid, producerEpoch: 0, baseSequence: 0 });
    let w = await WireClient.connect(broker.bootstrap);
    const [first] = parseProduceV3(await w.request(API.Produce, 3, produceBody(topic, 0, Buffer.from(idem))));
    w.close();

    const stopped = await broker.kill('SIGTERM');
    assert.equal(stopped.code, 0, broker.output());
    assert.ok(fs.existsSync(`${dataDir}/.clean-shutdown`));
    broker = await start(dataDir);
    assert.match(broker.output(), /"recovered":false/);
    kafka = testKafka(broker.bootstrap);

    const admin = kafka.admin();
    await admin.connect();
    const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
    assert.equal(offsets.partitions[0].offset, '6');
    assert.ok((await admin.listGroups()).groups.some((g) => g.groupId === groupId), 'the group is still listed');
    assert.equal((await admin.fetchTopicOffsets(topic))[0].high, '11');
    await admin.disconnect();
    assert.ok((await producerId(broker.bootstrap)) > pid);
    w = await WireClient.connect(broker.bootstrap);
    const [again] = parseProduceV3(await w.request(API.Produce, 3, produceBody(topic, 0, Buffer.from(idem))));
    w.close();
    assert.deepEqual([again.errorCode, again.baseOffset], [0, first.baseOffset]);

    // The group resumes from the committed offset.
    const resumed: string[] = [];
    const c2 = kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
    await c2.connect();
    await c2.subscribe({ topic, fromBeginning: true });
    await c2.run({ eachMessage: async ({ message }) => void resumed.push(message.value!.toString()) });
    await waitFor(() => resumed.length >= 5, 10_000, 'records from offset 6');
    await c2.disconnect();
    assert.deepEqual(resumed, ['v6', 'v7', 'v8', 'v9', 'once']);
    await broker.kill('SIGTERM');
  });

  test('a second broker on the same data directory is refused while the first runs', async () => {
    const dataDir = tempDir('postline-lock-');
    dirs.push(dataDir);
    const first = await start(dataDir);
    await assert.rejects(spawnBrokerProcess({ dataDir }), /in use by process/);
    await first.kill('SIGTERM');
  });
});
