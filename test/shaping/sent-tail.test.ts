/**
 * The shared warm-up counter: a tail of email.events (embedded broker) counts every replica's
 * `sent` events of today per source address — after a restart too — and this replica's own
 * sends count at once.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import pino from 'pino';
import { startTestBroker, uniqueName, waitFor, type TestBroker } from '../helpers/broker.js';
import { SharedSentCounter, startSentTail } from '../../services/dispatcher/shaping/sent-tail.js';
import { Warmup } from '../../services/dispatcher/shaping/warmup.js';

const logger = pino({ level: 'silent' });
const DAY = 86_400_000;

describe('sent tail', () => {
  let broker: TestBroker;
  let kafka: Kafka;
  let producer: Producer;
  let topic: string;
  before(async () => {
    broker = await startTestBroker();
    kafka = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
    topic = uniqueName('events');
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 3 }] });
    await admin.disconnect();
    producer = kafka.producer();
    await producer.connect();
  });
  after(async () => {
    await producer?.disconnect();
    await broker?.destroy();
  });

  const event = (type: string, source: string | undefined, at: number, i: number) => ({
    key: `m-${i}`,
    value: JSON.stringify({ schemaVersion: 1, eventId: `e-${i}-${type}`, type, messageId: `m-${i}`, tenant: 't', at: new Date(at).toISOString(), stage: 'dispatcher', ...(source ? { source } : {}) }),
  });

  it('counts today’s sent events of every replica per address, from the start of the day, and keeps following', async () => {
    const now = Date.now();
    let i = 0;
    const messages = [
      ...Array.from({ length: 7 }, () => event('sent', '127.0.0.2', now, i++)),
      ...Array.from({ length: 3 }, () => event('sent', '127.0.0.3', now, i++)),
      event('sent', '127.0.0.2', now - DAY, i++), // yesterday's, read late: not today's
      event('bounced', '127.0.0.2', now, i++),
      event('sent', undefined, now, i++), // the relay route: no source address
      { key: 'x', value: 'not json' },
    ];
    await producer.send({ topic, messages });

    const counter = new SharedSentCounter(5_000);
    const tail = await startSentTail({ kafka, counter, logger, topic, groupPrefix: uniqueName('dispatcher') });
    try {
      assert.equal(await tail.caughtUp, true);
      assert.equal(counter.count('127.0.0.2', Date.now()), 7);
      assert.equal(counter.count('127.0.0.3', Date.now()), 3);

      // Another replica sends: the tail follows.
      await producer.send({ topic, messages: Array.from({ length: 5 }, () => event('sent', '127.0.0.2', Date.now(), i++)) });
      await waitFor(() => counter.count('127.0.0.2', Date.now()) === 12, 10_000, 'the tail to count the new events');

      // This replica's own send counts at once, and the warm-up cap sees it.
      const warmup = new Warmup(new Map([['127.0.0.2', { start: new Date(now - 2 * DAY).toISOString().slice(0, 10), schedule: [[1, 10], [3, 13]] }]]), counter);
      assert.ok(warmup.available('127.0.0.2', Date.now()));
      warmup.record('127.0.0.2', Date.now());
      assert.equal(counter.count('127.0.0.2', Date.now()), 13);
      assert.equal(warmup.available('127.0.0.2', Date.now()), false);
    } finally {
      await tail.stop();
    }

    // A restarted replica: a new tail counts the whole day again.
    const again = new SharedSentCounter();
    const tail2 = await startSentTail({ kafka, counter: again, logger, topic, groupPrefix: uniqueName('dispatcher') });
    try {
      assert.equal(await tail2.caughtUp, true);
      assert.equal(again.count('127.0.0.2', Date.now()), 12);
    } finally {
      await tail2.stop();
    }
  });

  it('forgets its own sends after lagMs and starts every UTC day at 0', () => {
    const c = new SharedSentCounter(1_000);
    const t = Date.parse('2026-12-03T23:59:58Z');
    c.add('a', t);
    c.seen('a', t);
    assert.equal(c.count('a', t), 2, 'until its event surely came back, counted twice (caps early, never late)');
    assert.equal(c.count('a', t + 1_000), 1);
    assert.equal(c.count('a', Date.parse('2026-12-04T00:00:00Z')), 0);
    c.seen('a', t); // a late event of yesterday
    assert.equal(c.count('a', Date.parse('2026-12-04T00:00:01Z')), 0);
  });
});
