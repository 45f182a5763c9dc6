/**
 * StageConsumer with a record that takes long (a hung SMTP transaction): the records produced
 * after it on the same partition — fetched later — are handled meanwhile, within the in-flight
 * bounds, while the committed offset stays at the slow record until it finishes. A slow record
 * that then fails restarts the partition from it. (Issue 16 item 6.)
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import pino from 'pino';
import { startTestBroker, uniqueName, waitFor, type TestBroker } from '../helpers/broker.js';
import { StageConsumer, type StageRecord } from '../../shared/kafka/stage-consumer.js';

const logger = pino({ level: 'silent' });
let broker: TestBroker;
let kafka: Kafka;
let admin: Admin;

before(async () => {
  broker = await startTestBroker();
  kafka = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
  admin = kafka.admin();
  await admin.connect();
});
after(async () => {
  await admin.disconnect();
  await broker.destroy();
});

async function committed(groupId: string, topic: string): Promise<string> {
  const [t] = await admin.fetchOffsets({ groupId, topics: [topic] });
  return t.partitions[0].offset;
}

interface Slow {
  started: Promise<void>;
  finish(err?: Error): void;
}

/** A stage on a one-partition topic whose record "slow" waits until `finish`. */
async function stageWithSlowRecord(opts: { maxUncommitted?: number; concurrency?: number } = {}) {
  const topic = uniqueName('flow');
  const groupId = uniqueName('flow-group');
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] });
  const producer = kafka.producer();
  await producer.connect();
  let markStarted!: () => void;
  let release!: (err?: Error) => void;
  const slow: Slow = {
    started: new Promise<void>((r) => (markStarted = r)),
    finish: (err) => release(err),
  };
  const slowDone = new Promise<Error | undefined>((r) => (release = r));
  const handled: string[] = [];
  let slowRuns = 0;
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 50 });
  await consumer.connect();
  const stage = new StageConsumer({
    consumer,
    topics: [topic],
    concurrency: opts.concurrency ?? 8,
    maxUncommitted: opts.maxUncommitted,
    commitIntervalMs: 50,
    logger,
    deadLetters: { deadLetter: async () => assert.fail('no record should be dead-lettered') },
    handle: async ({ message }: StageRecord) => {
      const v = message.value!.toString();
      if (v === 'slow' && slowRuns++ === 0) {
        markStarted();
        const err = await slowDone;
        if (err) throw err;
      }
      handled.push(v);
    },
  });
  stage.on('failed', () => undefined);
  await stage.start();
  const send = async (value: string): Promise<void> => {
    await producer.send({ topic, acks: -1, messages: [{ value }] });
  };
  return {
    topic,
    groupId,
    slow,
    handled,
    send,
    slowRuns: () => slowRuns,
    async close() {
      await stage.stop();
      await consumer.disconnect();
      await producer.disconnect();
    },
  };
}

test('a slow record does not hold up the records fetched after it; the commit waits for it', async () => {
  const s = await stageWithSlowRecord();
  try {
    await s.send('slow');
    await s.slow.started;
    // Produced one by one after the slow one started: each comes in a later fetch.
    for (let i = 0; i < 20; i++) await s.send(`r${i}`);
    await waitFor(() => s.handled.length === 20, 5000, `20 later records handled while the slow one runs (have ${s.handled.length})`);
    assert.equal(await committed(s.groupId, s.topic), '-1', 'nothing committed past the slow record');
    s.slow.finish();
    await waitFor(async () => (await committed(s.groupId, s.topic)) === '21', 5000, 'everything committed once the slow one finished');
    assert.deepEqual(s.handled.slice(-1), ['slow']);
  } finally {
    s.slow.finish();
    await s.close();
  }
});

test('records past the slow one are bounded by maxUncommitted', async () => {
  const s = await stageWithSlowRecord({ maxUncommitted: 5 });
  try {
    await s.send('slow');
    await s.slow.started;
    for (let i = 0; i < 12; i++) await s.send(`r${i}`);
    // The slow one and four more: their finished offsets wait in memory for the commit.
    await waitFor(() => s.handled.length === 4, 5000, `4 records past the slow one (have ${s.handled.length})`);
    await new Promise((r) => setTimeout(r, 300)); // a bound is shown by what does *not* happen
    assert.equal(s.handled.length, 4);
    s.slow.finish();
    await waitFor(() => s.handled.length === 13, 5000, `the rest once the slow one finished (have ${s.handled.length})`);
    await waitFor(async () => (await committed(s.groupId, s.topic)) === '13', 5000, 'all committed');
  } finally {
    s.slow.finish();
    await s.close();
  }
});

test('a slow record that fails after later ones finished: the partition restarts from it and nothing is lost', async () => {
  const s = await stageWithSlowRecord();
  try {
    await s.send('slow');
    await s.slow.started;
    for (let i = 0; i < 5; i++) await s.send(`r${i}`);
    await waitFor(() => s.handled.length === 5, 5000, 'later records handled');
    s.slow.finish(new Error('side effect failed'));
    // The failed record comes again (its second run succeeds) without anything new produced.
    await waitFor(() => s.handled.includes('slow'), 20_000, 'the failed record handled again');
    assert.equal(s.slowRuns(), 2);
    await waitFor(async () => (await committed(s.groupId, s.topic)) === '6', 10_000, 'all committed');
    for (let i = 0; i < 5; i++) assert.ok(s.handled.includes(`r${i}`));
  } finally {
    await s.close();
  }
});

test("batchEndCommit 'interval' (the followers of email.events): batches' ends commit at most once per interval; stop commits at once", async () => {
  const topic = uniqueName('interval');
  const groupId = uniqueName('interval-group');
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] });
  const producer = kafka.producer();
  await producer.connect();
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 50 });
  await consumer.connect();
  const handled: string[] = [];
  const stage = new StageConsumer({
    consumer,
    topics: [topic],
    concurrency: 8,
    // Long enough that the three one-record batches below end well within it, even on a busy machine.
    commitIntervalMs: 4000,
    batchEndCommit: 'interval',
    logger,
    deadLetters: { deadLetter: async () => assert.fail('no record should be dead-lettered') },
    handle: async ({ message }: StageRecord) => void handled.push(message.value!.toString()),
  });
  let commits = 0;
  stage.on('committed', () => commits++);
  await stage.start();
  let stopped = false;
  try {
    // One batch each: the first commit comes within the interval, not at the batch's end.
    for (const value of ['a', 'b', 'c']) {
      await producer.send({ topic, acks: -1, messages: [{ value }] });
      await waitFor(() => handled.includes(value), 5000, `${value} handled`);
    }
    assert.equal(await committed(groupId, topic), '-1', 'nothing committed at the ends of the batches');
    await waitFor(async () => (await committed(groupId, topic)) === '3', 10_000, 'all three committed within the interval');
    // The broker stores the commit before its answer reaches the consumer, which then emits 'committed'.
    await waitFor(() => commits > 0, 5000, 'the commit acknowledged');
    assert.equal(commits, 1, 'one commit for three batches');
    await producer.send({ topic, acks: -1, messages: [{ value: 'd' }] });
    await waitFor(() => handled.includes('d'), 5000, 'd handled');
    await stage.stop();
    stopped = true;
    assert.equal(await committed(groupId, topic), '4', 'stop commits what finished without waiting for the interval');
  } finally {
    if (!stopped) await stage.stop();
    await consumer.disconnect();
    await producer.disconnect();
  }
});
