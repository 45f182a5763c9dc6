/**
 * Where a single message's time goes on `npm start`: starts the real `postline start` (free
 * ports, a temporary data directory) relaying to an SMTP sink, sends `count` messages one at a
 * time, then reads every hop's record timestamp back from the broker and prints per-hop medians:
 *
 *   node --import tsx test/bench/single-message-hops.ts [count] [gapMs]
 *
 * Hops: POST → 202 (ingest's produce and its ack), split at the request record's timestamp into
 * ingest's own work (POST → request record) and the broker's append, fsync and ack (request
 * record → 202); 202 → the dispatch record's timestamp (the
 * renderer's fetch wake-up, render, and its produce: kafkajs stamps a record when it builds the
 * batch); dispatch record → 250 at the sink (the broker's append and fsync, the dispatcher's
 * fetch wake-up and its SMTP on a warm connection); 250 → the `sent` event. The first message
 * after start is printed on its own. Timestamps are wall-clock (one machine): figures are ms.
 * POSTLINE_HOPS_NODE_FLAGS adds node flags to every process (`postline start --node-flags`),
 * e.g. `--require ./probe.cjs` to time something inside the stages.
 */
import { Kafka, logLevel } from 'kafkajs';
import { startLauncher, warmHttpClient } from './embedded-launcher.js';
import { startSmtpSink } from '../helpers/smtp-sink.js';

const count = Number(process.argv[2] ?? 60);
const gapMs = Number(process.argv[3] ?? 100);

const sink = await startSmtpSink({ greetingDelay: false });
const launcher = await startLauncher({ relay: sink, args: process.env.POSTLINE_HOPS_NODE_FLAGS ? [`--node-flags=${process.env.POSTLINE_HOPS_NODE_FLAGS}`] : [] });
try {
  await warmHttpClient(launcher);
  const sent: Array<{ id: string; posted: number; accepted: number; delivered: number }> = [];
  for (let i = 0; i < count; i++) {
    const before = sink.messages.length;
    const posted = Date.now();
    const res = await fetch(`${launcher.ingestUrl}/v1/emails`, {
      method: 'POST',
      headers: { authorization: `Bearer ${launcher.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ from: 'Probe <probe@example.com>', to: [`probe${i}@example.org`], subject: `hops ${i}`, text: 'One at a time.' }),
    });
    const accepted = Date.now();
    const { id } = (await res.json()) as { id: string };
    while (sink.messages.length === before) await new Promise((r) => setImmediate(r));
    sent.push({ id, posted, accepted, delivered: sink.messages[before].at });
    await new Promise((r) => setTimeout(r, gapMs));
  }

  // Record timestamps per message id: email.requested and email.events are keyed by it; a
  // dispatch record (keyed by domain) names it in its value.
  const stamps = new Map<string, Record<string, number>>();
  const kafka = new Kafka({ brokers: [launcher.brokerAddress], clientId: 'hops', logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: `hops-${Date.now()}`, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topics: ['email.requested.transactional', 'email.dispatch.transactional', 'email.events'], fromBeginning: true });
  let seen = 0;
  await consumer.run({
    eachMessage: async ({ topic, message }) => {
      seen++;
      const value = message.value?.toString() ?? '';
      const id = topic.startsWith('email.dispatch') ? (/"messageId":"([^"]+)"/.exec(value)?.[1] ?? '') : (message.key?.toString() ?? '');
      const name = topic === 'email.events' ? `event ${/"type":"([a-z]+)"/.exec(value)?.[1]}` : topic;
      const s = stamps.get(id) ?? {};
      s[name] ??= Number(message.timestamp);
      stamps.set(id, s);
    },
  });
  const wanted = count * 4; // requested, dispatch, accepted, rendered (+ sent)
  for (const deadline = Date.now() + 30_000; seen < wanted && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 100));
  await consumer.disconnect();

  const hops: Record<string, number[]> = {};
  const add = (name: string, ms: number): void => void (Number.isFinite(ms) && (hops[name] ??= []).push(ms));
  for (const [i, m] of sent.entries()) {
    const s = stamps.get(m.id) ?? {};
    const row = {
      'POST → 202': m.accepted - m.posted,
      'POST → request record': s['email.requested.transactional'] - m.posted,
      'request record → 202': m.accepted - s['email.requested.transactional'],
      '202 → 250': m.delivered - m.accepted,
      '202 → dispatch record': s['email.dispatch.transactional'] - m.accepted,
      'dispatch record → 250': m.delivered - s['email.dispatch.transactional'],
      '250 → sent event': s['event sent'] - m.delivered,
    };
    if (i === 0) console.log(JSON.stringify({ first: row }));
    else for (const [k, v] of Object.entries(row)) add(k, v);
  }
  const q = (a: number[], p: number): number => [...a].sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor(p * a.length))];
  for (const [k, v] of Object.entries(hops)) console.log(JSON.stringify({ hop: k, p50: q(v, 0.5), p90: q(v, 0.9), p99: q(v, 0.99), n: v.length }));
} finally {
  // A stop, not a kill: processes under --cpu-prof write their profiles as they exit.
  await launcher.stop();
  await sink.close();
}
