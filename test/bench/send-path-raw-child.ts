/**
 * The raw-library baselines of the send-path benchmark, one job per process (forked by
 * send-path-raw-baselines.ts, fresh for every run, as cold as a freshly started stage):
 *
 * - `render`: Handlebars + MailComposer for n messages, `concurrency` at once (the renderer's
 *   default in-flight count), no Kafka;
 * - `smtp-pooled`: nodemailer `createTransport({ pool: true, maxConnections })` sending n raw
 *   messages (the same template rendered the same way) to the sink, `lanes` sends at once;
 * - `smtp-new-connection`: nodemailer without a pool — a new connection (greeting, EHLO, QUIT)
 *   per message — `lanes` at once, stopping at n or `timeLimitMs`;
 * - `render-kafka`, a plain kafkajs renderer: n requests consumed from `inTopic` by a kafkajs
 *   consumer (a fresh group, all partitions at once), rendered as `render` does, `concurrency` of a
 *   fetched batch at once, and produced as dispatch records (the request's fields + the MIME, JSON)
 *   to `outTopic` with a `rendered` event each to `eventsTopic`, acks=-1, before the next
 *   `concurrency`; offsets committed by kafkajs; timed from its first fetched batch to the ack of
 *   its n-th record;
 * - `smtp-kafka`, a plain kafkajs dispatcher: n dispatch records consumed from `inTopic`, sent
 *   through the same nodemailer pool as `smtp-pooled` (`concurrency` spread over the partitions),
 *   and a `sent` event per message produced to `eventsTopic` (acks=-1) once its share has its 250s;
 *   the sink times it, as it times the pool alone.
 *
 * The two kafkajs stages are what a developer would write with these libraries: no validation,
 * contracts, metrics or logs, and the kafkajs encoding fixes Postline's stages load
 * (shared/kafka/kafkajs-preload.ts). Not a floor: Postline's stages pipeline their produces and
 * can beat them.
 *
 * Replies `{ type: 'done', startAt, endAt, count, errors, firstError?, cpuSeconds }` (epoch ms).
 */
import { randomUUID } from 'node:crypto';
import type { Producer } from 'kafkajs';
import nodemailer from 'nodemailer';
import { recipient, rawRenderer, rawRequestRenderer, FROM, type RawRenderInput } from './send-path-workload.js';

interface Job {
  mode: 'render' | 'smtp-pooled' | 'smtp-new-connection' | 'render-kafka' | 'smtp-kafka';
  tag: string;
  n: number;
  concurrency: number;
  host?: string;
  port?: number;
  maxConnections?: number;
  /** Distinct messages to render up front and cycle through (SMTP modes). */
  distinct?: number;
  timeLimitMs?: number;
  /** The kafkajs modes: the broker, the topics, and how many partitions are read at once. */
  bootstrap?: string;
  inTopic?: string;
  outTopic?: string;
  eventsTopic?: string;
  partitions?: number;
}

const epochMs = (): number => performance.timeOrigin + performance.now();

/** Runs `op(i)` for i in [0, n) with `lanes` in flight; stops starting new ones after `until`. */
async function lanes(n: number, width: number, until: number, op: (i: number) => Promise<void>): Promise<{ count: number; errors: number; firstError?: string; firstAt?: number }> {
  let next = 0;
  let count = 0;
  let firstAt: number | undefined;
  let errors = 0;
  let firstError: string | undefined;
  const lane = async (): Promise<void> => {
    while (next < n && epochMs() < until) {
      const i = next++;
      try {
        await op(i);
        firstAt ??= epochMs();
        count++;
      } catch (err) {
        errors++;
        firstError ??= (err as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: width }, lane));
  return { count, errors, firstError, firstAt };
}

/** A bare kafkajs consumer (a fresh group on `job.inTopic`, from its start) and producer, with the kafkajs fixes every Postline stage loads. */
async function bareKafka(job: Job, name: string) {
  // Native CRC-32C and unzeroed encoder buffers, loaded before kafkajs itself.
  await import('../../shared/kafka/kafkajs-preload.js');
  const { Kafka, logLevel } = await import('kafkajs');
  const kafka = new Kafka({ clientId: `bench-${name}`, brokers: [job.bootstrap!], logLevel: logLevel.NOTHING });
  const producer = kafka.producer();
  const consumer = kafka.consumer({ groupId: `bench-${name}-${job.tag}` });
  await Promise.all([producer.connect(), consumer.connect()]);
  await consumer.subscribe({ topic: job.inTopic!, fromBeginning: true });
  return { producer, consumer };
}

/** `rendered` / `sent` events as a stage would publish them. */
function eventValue(type: string, r: { messageId: string; tenant: string; priority: string }, recipients: string[], at: string): Buffer {
  return Buffer.from(JSON.stringify({ schemaVersion: 1, eventId: randomUUID(), type, messageId: r.messageId, tenant: r.tenant, at, stage: 'bench', priority: r.priority, recipients, attempt: 1, latencyMs: 1 }));
}

/**
 * Reads job.n records of `job.inTopic` with a bare kafkajs consumer, all partitions at once, each
 * fetched batch `width` records at a time through `chunk` (which produces what it must before the
 * next). Timed from the first fetched batch (the group's join left out) to the last chunk's end.
 */
async function consumeInChunks<T>(job: Job, name: string, width: number, decode: (value: Buffer) => T, chunk: (items: T[], producer: Producer) => Promise<void>): Promise<Record<string, unknown>> {
  const { producer, consumer } = await bareKafka(job, name);
  let count = 0;
  let firstAt: number | undefined;
  let endAt = 0;
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const cpu0 = process.cpuUsage();
  const startAt = epochMs();
  await consumer.run({
    partitionsConsumedConcurrently: job.partitions ?? 1,
    eachBatch: async ({ batch }) => {
      firstAt ??= epochMs();
      const items = batch.messages.map((m) => decode(m.value!));
      // A chunk's records in one produce: a fetched batch's could pass a topic's max.message.bytes.
      for (let i = 0; i < items.length; i += width) await chunk(items.slice(i, i + width), producer);
      count += items.length;
      if (count >= job.n && !endAt) {
        endAt = epochMs();
        finish();
      }
    },
  });
  await finished;
  const cpuSeconds = cpuSince(cpu0);
  await consumer.disconnect();
  await producer.disconnect();
  return { count, errors: 0, startAt, firstAt, endAt, cpuSeconds };
}

interface DispatchInput {
  messageId: string;
  tenant: string;
  priority: string;
  envelope: { from: string; to: string[] };
  raw: string;
}

/** The plain kafkajs dispatcher: consumed dispatch records sent through a nodemailer pool, a `sent` event each. */
async function sendThroughKafka(job: Job): Promise<Record<string, unknown>> {
  const transport = nodemailer.createTransport({ host: job.host, port: job.port, secure: false, ignoreTLS: true, pool: true, maxConnections: job.maxConnections ?? 5, maxMessages: Infinity });
  try {
    const width = Math.max(1, Math.ceil(job.concurrency / (job.partitions ?? 1)));
    return await consumeInChunks(job, 'plain-dispatcher', width, (v) => JSON.parse(String(v)) as DispatchInput, async (records, producer) => {
      await Promise.all(records.map((r) => transport.sendMail({ envelope: r.envelope, raw: r.raw })));
      const at = new Date().toISOString();
      await producer.send({ topic: job.eventsTopic!, acks: -1, messages: records.map((r) => ({ key: r.messageId, value: eventValue('sent', r, r.envelope.to, at) })) });
    });
  } finally {
    transport.close();
  }
}

type RenderInput = RawRenderInput & { tenant: string; priority: string; acceptedAt: string; from: { email: string }; tags?: string[] };

/** The plain kafkajs renderer: consumed requests rendered, a dispatch record and a `rendered` event each. */
async function renderThroughKafka(job: Job): Promise<Record<string, unknown>> {
  const render = rawRequestRenderer();
  return consumeInChunks(job, 'plain-renderer', job.concurrency, (v) => JSON.parse(String(v)) as RenderInput, async (requests, producer) => {
    const raws = await Promise.all(requests.map(render));
    const at = new Date().toISOString();
    const dispatch = requests.map((req, k) => {
      const to = req.to[0].email;
      const domain = to.slice(to.lastIndexOf('@') + 1);
      const record = { schemaVersion: 1, messageId: req.messageId, tenant: req.tenant, priority: req.priority, domain, envelope: { from: req.from.email, to: [to] }, fromDomain: 'shop.example', acceptedAt: req.acceptedAt, tags: req.tags, attempt: 1, raw: raws[k].toString() };
      return { key: domain, value: Buffer.from(JSON.stringify(record)) };
    });
    const events = requests.map((req) => ({ key: req.messageId, value: eventValue('rendered', req, [req.to[0].email], at) }));
    await producer.sendBatch({ acks: -1, topicMessages: [{ topic: job.outTopic!, messages: dispatch }, { topic: job.eventsTopic!, messages: events }] });
  });
}

async function run(job: Job): Promise<Record<string, unknown>> {
  if (job.mode === 'render-kafka') return renderThroughKafka(job);
  if (job.mode === 'smtp-kafka') return sendThroughKafka(job);
  const render = rawRenderer();
  const cpu0 = process.cpuUsage();
  const until = epochMs() + (job.timeLimitMs ?? 600_000);
  if (job.mode === 'render') {
    const startAt = epochMs();
    const r = await lanes(job.n, job.concurrency, until, async (i) => void (await render(job.tag, i)));
    return { ...r, startAt, endAt: epochMs(), cpuSeconds: cpuSince(cpu0) };
  }
  // The messages are rendered before the clock starts: only sending is measured.
  const raws = await Promise.all(Array.from({ length: Math.min(job.n, job.distinct ?? 1000) }, (_, i) => render(job.tag, i)));
  const transport = nodemailer.createTransport(
    job.mode === 'smtp-pooled'
      ? { host: job.host, port: job.port, secure: false, ignoreTLS: true, pool: true, maxConnections: job.maxConnections ?? 5, maxMessages: Infinity }
      : { host: job.host, port: job.port, secure: false, ignoreTLS: true },
  );
  const cpu1 = process.cpuUsage();
  const startAt = epochMs();
  const r = await lanes(job.n, job.concurrency, until, async (i) => {
    await transport.sendMail({ envelope: { from: FROM.email, to: [recipient(job.tag, i)] }, raw: raws[i % raws.length] });
  });
  const endAt = epochMs();
  transport.close();
  return { ...r, startAt, endAt, cpuSeconds: cpuSince(cpu1) };
}

function cpuSince(from: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(from);
  return (u.user + u.system) / 1e6;
}

process.once('message', (job: Job) => {
  run(job).then(
    (result) => process.send?.({ type: 'done', ...result }, () => process.exit(0)),
    (err: Error) => process.send?.({ type: 'error', error: err.stack ?? String(err) }, () => process.exit(1)),
  );
});
