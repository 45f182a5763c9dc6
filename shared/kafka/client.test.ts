import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import type { Consumer } from 'kafkajs';
import { logLevel } from 'kafkajs';
import { createKafka, fetchMaxWait, follower, kafkajsLogLevel } from './client.js';
import { StageConsumer } from './stage-consumer.js';
import { PartitionHolds } from './partition-holds.js';
import type { PostlineConfig } from '../config.js';
import { startTestBroker, uniqueName, waitFor } from '../../test/helpers/broker.js';

function kafkaConfig(bootstrap: string, over: Partial<PostlineConfig['kafka']> = {}): PostlineConfig['kafka'] {
  return {
    brokers: [bootstrap],
    clientId: uniqueName('client-test'),
    connectionTimeoutMs: 3000,
    requestTimeoutMs: 30_000,
    sessionTimeoutMs: 30_000,
    fetchMaxWaitMs: 3000,
    followerMaxWaitMs: 1000,
    producerLingerMs: 2,
    createTopics: true,
    partitions: 1,
    replicationFactor: 1,
    ...over,
  };
}

test('the fetch wait is kafka.fetchMaxWaitMs, capped at a third of the session so heartbeats (sent between fetches) stay in time', () => {
  const cases: Array<[fetchMaxWaitMs: number, sessionTimeoutMs: number, consumerSession: number | undefined, expected: number]> = [
    [3000, 30_000, undefined, 3000],
    [3000, 10_000, undefined, 3000],
    [5000, 10_000, undefined, 3333],
    [3000, 6000, undefined, 2000],
    [3000, 30_000, 6000, 2000], // a consumer with its own (shorter) session
    [100, 30_000, undefined, 100],
  ];
  for (const [fetchMaxWaitMs, sessionTimeoutMs, consumerSession, expected] of cases) {
    assert.equal(fetchMaxWait({ fetchMaxWaitMs, sessionTimeoutMs }, consumerSession), expected, `${fetchMaxWaitMs} ms, session ${sessionTimeoutMs} ms, consumer session ${consumerSession}`);
  }
});

test('a consumer from createKafka long-polls for kafka.fetchMaxWaitMs on an idle topic', async (t) => {
  const broker = await startTestBroker();
  t.after(() => broker.destroy());
  const fetchMaxWaitMs = 1500;
  const kafka = createKafka(kafkaConfig(broker.bootstrap, { fetchMaxWaitMs }), 'wait-test', pino({ level: 'silent' }));
  const admin = kafka.admin();
  await admin.connect();
  t.after(() => admin.disconnect());
  const topic = uniqueName('idle');
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] });
  const consumer = kafka.consumer({ groupId: uniqueName('idle-group') });
  t.after(() => consumer.disconnect());
  const fetches: number[] = [];
  consumer.on(consumer.events.REQUEST, (e) => {
    if (e.payload.apiName === 'Fetch') fetches.push(e.payload.duration);
  });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({ eachMessage: async () => undefined });
  await waitFor(() => fetches.length >= 1, 30_000, 'an empty fetch to come back');
  // The broker held the fetch for the configured wait (kafkajs alone would wait 5 s).
  assert.ok(fetches[0] >= fetchMaxWaitMs - 50 && fetches[0] < fetchMaxWaitMs + 1000, `the empty fetch took ${fetches[0]} ms`);
});

test('kafkajs log levels: a rebalance is information, other error answers stay errors', () => {
  const rebalancing = 'The group is rebalancing, so a rejoin is needed';
  assert.equal(kafkajsLogLevel(logLevel.ERROR, 'Response Heartbeat(key: 12, version: 3)', rebalancing), 'debug');
  assert.equal(kafkajsLogLevel(logLevel.ERROR, 'Response OffsetCommit(key: 8, version: 5)', rebalancing), 'debug');
  assert.equal(kafkajsLogLevel(logLevel.WARN, 'The group is rebalancing, re-joining'), 'info');
  assert.equal(kafkajsLogLevel(logLevel.ERROR, 'Response Heartbeat(key: 12, version: 3)', 'The coordinator is not aware of this member'), 'error');
  assert.equal(kafkajsLogLevel(logLevel.ERROR, 'Crash: KafkaJSNumberOfRetriesExceeded', rebalancing), 'error');
  assert.equal(kafkajsLogLevel(logLevel.WARN, 'KafkaJS v2.0.0 switched default partitioner. To retain the same partitioning …'), undefined);
  assert.equal(kafkajsLogLevel(logLevel.WARN, 'Connection timeout'), 'warn');
});

test('a member whose group rebalances under it (a second member joins) logs no error or warning for it', async (t) => {
  const broker = await startTestBroker();
  t.after(() => broker.destroy());
  const lines: Array<{ level: number; msg: string }> = [];
  const logger = pino({ level: 'debug' }, { write: (l: string) => void lines.push(JSON.parse(l)) });
  const kafka = createKafka(kafkaConfig(broker.bootstrap, { fetchMaxWaitMs: 500, sessionTimeoutMs: 6000 }), 'rebalance-log-test', logger);
  const admin = kafka.admin();
  await admin.connect();
  t.after(() => admin.disconnect());
  const topic = uniqueName('rebalance-log');
  await admin.createTopics({ topics: [{ topic, numPartitions: 2 }] });
  const groupId = uniqueName('rebalance-log-group');
  const members = [kafka.consumer({ groupId }), kafka.consumer({ groupId })];
  t.after(() => Promise.all(members.map((m) => m.disconnect())));
  const joins = [0, 0];
  members.forEach((m, i) => m.on(m.events.GROUP_JOIN, () => joins[i]++));
  await members[0].connect();
  await members[0].subscribe({ topic, fromBeginning: true });
  await members[0].run({ eachMessage: async () => undefined });
  await waitFor(() => joins[0] === 1, 30_000, 'the first member to join');
  await members[1].connect();
  await members[1].subscribe({ topic, fromBeginning: true });
  await members[1].run({ eachMessage: async () => undefined });
  // The first member hears of the rebalance (a heartbeat answered REBALANCE_IN_PROGRESS) and rejoins.
  await waitFor(() => joins[0] === 2 && joins[1] === 1, 30_000, 'both members in the new generation');
  const rejoin = lines.find((l) => l.msg === 'The group is rebalancing, re-joining');
  assert.ok(rejoin, 'the rejoin is logged');
  assert.equal(rejoin.level, 30, 'at info');
  assert.deepEqual(lines.filter((l) => l.level >= 40).map((l) => l.msg), [], 'no warning or error');
  assert.ok(lines.some((l) => l.level === 20 && l.msg.startsWith('Response Heartbeat')), 'the heartbeat answer at debug');
});

test('a consumer whose fetch waits 5 s stops and disconnects in well under a second, and a running stage consumer too', async (t) => {
  const broker = await startTestBroker();
  t.after(() => broker.destroy());
  const kafka = createKafka(kafkaConfig(broker.bootstrap, { fetchMaxWaitMs: 5000 }), 'stop-test', pino({ level: 'silent' }));
  const admin = kafka.admin();
  await admin.connect();
  t.after(() => admin.disconnect());
  const topic = uniqueName('stop');
  await admin.createTopics({ topics: [{ topic, numPartitions: 2 }] });
  const logger = pino({ level: 'silent' });

  async function parkedInFetch(consumer: Consumer, run: () => Promise<void>): Promise<void> {
    let fetchStarts = 0;
    consumer.on(consumer.events.FETCH_START, () => fetchStarts++);
    await consumer.connect();
    await run();
    await waitFor(() => fetchStarts >= 1, 30_000, 'a fetch to be sent');
    // Stop while that fetch is parked on the broker (it waits 5 s on the empty topic).
    await new Promise((r) => setImmediate(r));
  }

  // A plain consumer: disconnect (stop + leave + close).
  const plain = kafka.consumer({ groupId: uniqueName('stop-plain') });
  await parkedInFetch(plain, async () => {
    await plain.subscribe({ topic, fromBeginning: true });
    await plain.run({ eachMessage: async () => undefined });
  });
  let started = performance.now();
  await plain.disconnect();
  const plainMs = performance.now() - started;

  // A stage's consume loop: StageConsumer.stop, then disconnect.
  const stageGroup = uniqueName('stop-stage');
  const consumer = kafka.consumer({ groupId: stageGroup });
  const stage = new StageConsumer({ consumer, topics: [topic], concurrency: 4, handle: async () => undefined, deadLetters: { deadLetter: async () => undefined }, logger });
  await parkedInFetch(consumer, () => stage.start());
  started = performance.now();
  await stage.stop();
  await consumer.disconnect();
  const stageMs = performance.now() - started;

  assert.ok(plainMs < 1000, `the consumer took ${Math.round(plainMs)} ms to disconnect`);
  assert.ok(stageMs < 1000, `the stage consumer took ${Math.round(stageMs)} ms to stop and disconnect`);
  // It left its group cleanly: no member waits for its session to lapse.
  const { groups } = await admin.describeGroups([stageGroup]);
  assert.equal(groups[0].members.length, 0);
});

// One partition: all paused, kafkajs sleeps instead of fetching. Two: a fetch waits on the other.
for (const partitions of [1, 2]) test(`a partition held (paused) and resumed while its consumer waits 5 s is fetched again at once, not after the wait (${partitions} partition(s))`, async (t) => {
  const broker = await startTestBroker();
  t.after(() => broker.destroy());
  const kafka = createKafka(kafkaConfig(broker.bootstrap, { fetchMaxWaitMs: 5000 }), 'resume-test', pino({ level: 'silent' }));
  const admin = kafka.admin();
  await admin.connect();
  t.after(() => admin.disconnect());
  const producer = kafka.producer();
  await producer.connect();
  t.after(() => producer.disconnect());
  const topic = uniqueName('held');
  await admin.createTopics({ topics: [{ topic, numPartitions: partitions }] });
  await producer.send({ topic, messages: [{ partition: 0, value: 'due-later' }] });
  const consumer = kafka.consumer({ groupId: uniqueName('held-group') });
  t.after(() => consumer.disconnect());
  const holds = new PartitionHolds();
  t.after(() => holds.clear());
  const seen: number[] = [];
  let resumedAt = 0;
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachBatchAutoResolve: false,
    eachBatch: async ({ batch, pause }) => {
      seen.push(performance.now());
      // The first time, not due yet: held for 300 ms (the scheduler's way), the record unresolved.
      if (seen.length === 1) holds.hold(batch.topic, batch.partition, 300, () => {
        const resume = pause();
        return () => {
          resumedAt = performance.now();
          resume();
        };
      });
    },
  });
  await waitFor(() => seen.length >= 2, 30_000, 'the held record to come again');
  const ms = seen[1] - resumedAt;
  assert.ok(resumedAt > 0 && ms < 1000, `the record came ${Math.round(ms)} ms after its partition was resumed (fetch wait 5000 ms)`);
});

test('a follower asks for a batch and waits kafka.followerMaxWaitMs at rest, gets the first event after a quiet spell within the broker\'s linger, and fetches once per pace while events keep coming', async (t) => {
  const broker = await startTestBroker();
  t.after(() => broker.destroy());
  const kafka = createKafka(kafkaConfig(broker.bootstrap, { followerMaxWaitMs: 5000 }), 'pace-test', pino({ level: 'silent' }));
  const admin = kafka.admin();
  const producer = kafka.producer();
  await Promise.all([admin.connect(), producer.connect()]);
  t.after(() => Promise.all([admin.disconnect(), producer.disconnect()]));
  const topic = uniqueName('paced');
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] });
  const PACE_MS = 400;
  const consumer = kafka.consumer(follower({ groupId: uniqueName('paced-group') }, PACE_MS));
  t.after(() => consumer.disconnect());
  let fetches = 0;
  consumer.on(consumer.events.REQUEST, (e) => {
    if (e.payload.apiName === 'Fetch') fetches++;
  });
  const received: number[] = [];
  let batches = 0;
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachBatch: async ({ batch }) => {
      batches++;
      for (const _ of batch.messages) received.push(performance.now());
    },
  });
  // At rest: a fetch per follower wait (5 s), not per pace (400 ms).
  await new Promise((r) => setTimeout(r, 3000));
  assert.ok(fetches <= 2, `${fetches} fetches in 3 s at rest`);

  // The first event after a quiet spell: within the broker's linger (500 ms) though far below the
  // 64 KiB asked for, not after the 5 s wait.
  const sentAt = performance.now();
  await producer.send({ topic, messages: [{ value: 'first' }] });
  await waitFor(() => received.length === 1, 5000, 'the first event');
  const firstMs = received[0] - sentAt;
  assert.ok(firstMs >= 400 && firstMs < 1000, `the first event after a quiet spell came ${firstMs.toFixed(0)} ms after it was sent`);

  // Events one at a time for ~2 s: a batch per pace, not one per event.
  const before = batches;
  const t0 = performance.now();
  let n = 1;
  while (performance.now() - t0 < 2000) {
    await producer.send({ topic, messages: [{ value: `e${n++}` }] });
    await new Promise((r) => setTimeout(r, 10));
  }
  await waitFor(() => received.length === n, 5000, `${n} events`);
  const elapsed = performance.now() - t0;
  const bound = Math.ceil(elapsed / PACE_MS) + 2;
  assert.ok(batches - before <= bound, `${batches - before} batches for ${n - 1} events over ${elapsed.toFixed(0)} ms (at most ${bound})`);
  assert.ok(n - 1 > bound * 3, `enough events to tell (${n - 1})`);
});
