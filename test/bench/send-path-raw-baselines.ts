/**
 * The raw-library baselines, each run in a fresh process (send-path-raw-child.ts) so it pays the
 * same cold start as a freshly started stage and gets a core of its own like one:
 * Handlebars + MailComposer rendering, nodemailer pooled sending to the sink, and nodemailer
 * with a new connection per message.
 */
import type { ChildProcess } from 'node:child_process';
import { forkHelper, request, stopChild } from './send-path-processes.js';
import type { SinkProcess } from './send-path-sink.js';

export interface RawResult {
  /** Messages per second. */
  rate: number;
  count: number;
  seconds: number;
  /** CPU seconds of the baseline process while it worked. */
  cpuSeconds: number;
  truncated: boolean;
}

interface ChildReply {
  startAt: number;
  /** When the first operation finished (epoch ms). */
  firstAt?: number;
  endAt: number;
  count: number;
  errors: number;
  firstError?: string;
  cpuSeconds: number;
}

async function runJob(job: Record<string, unknown>, timeoutMs: number, onChild: (pid: number) => void): Promise<ChildReply> {
  const child: ChildProcess = forkHelper('send-path-raw-child.ts');
  onChild(child.pid as number);
  try {
    const reply = await request<ChildReply>(child, job, 'done', timeoutMs);
    if (reply.errors > 0) throw new Error(`${job.mode}: ${reply.errors} of ${job.n} failed, first: ${reply.firstError}`);
    return reply;
  } finally {
    await stopChild(child, 'SIGKILL');
  }
}

export interface RawRenderOptions {
  tag: string;
  n: number;
  concurrency: number;
  timeLimitMs: number;
}

/**
 * Handlebars + MailComposer, n messages: rate from the first finished render to the last, the
 * same window as the render stage's row (its first dispatch record to its last).
 */
export async function rawRender(o: RawRenderOptions, onChild: (pid: number) => void = () => undefined): Promise<RawResult> {
  const r = await runJob({ mode: 'render', ...o }, o.timeLimitMs + 30_000, onChild);
  const seconds = (r.endAt - (r.firstAt ?? r.startAt)) / 1000;
  return { rate: (r.count - 1) / seconds, count: r.count, seconds, cpuSeconds: r.cpuSeconds, truncated: r.count < o.n };
}

/** The plain kafkajs stages' broker and topics: the n records pre-loaded on `inTopic`; what they produce goes to the others. */
export interface PlainKafkaTopics {
  bootstrap: string;
  inTopic: string;
  eventsTopic: string;
  partitions: number;
}

export interface PlainRenderOptions extends RawRenderOptions, PlainKafkaTopics {
  /** Where the dispatch records go. */
  outTopic: string;
}

/**
 * A plain kafkajs renderer (send-path-raw-child.ts, `render-kafka`): the same rendering between a
 * kafkajs consumer and producer. Rate from its first fetched batch (the group's join left
 * out) to the ack of its last record, every message counted.
 */
export async function plainKafkaRender(o: PlainRenderOptions, onChild: (pid: number) => void = () => undefined): Promise<RawResult> {
  const r = await runJob({ mode: 'render-kafka', ...o }, o.timeLimitMs + 30_000, onChild);
  const seconds = (r.endAt - (r.firstAt ?? r.startAt)) / 1000;
  return { rate: r.count / seconds, count: r.count, seconds, cpuSeconds: r.cpuSeconds, truncated: r.count < o.n };
}

export interface RawSmtpOptions {
  tag: string;
  n: number;
  /** Sends in flight at once. */
  concurrency: number;
  /** Pool size (pooled mode). */
  maxConnections: number;
  timeLimitMs: number;
  signal?: AbortSignal;
}

/**
 * A plain kafkajs dispatcher (send-path-raw-child.ts, `smtp-kafka`): the same nodemailer pool
 * between a kafkajs consumer and producer. Timed at the sink, as the pool alone.
 */
export async function plainKafkaDispatch(sink: SinkProcess, o: RawSmtpOptions & PlainKafkaTopics, onChild: (pid: number) => void = () => undefined): Promise<RawResult> {
  const { signal, ...job } = o;
  const { done } = await sink.expect(o.n, o.timeLimitMs, signal);
  const r = await runJob({ mode: 'smtp-kafka', host: sink.host, port: sink.port, ...job }, o.timeLimitMs + 30_000, onChild);
  const w = await done;
  const seconds = (w.lastAt - w.firstAt) / 1000;
  return { rate: (o.n - 1) / seconds, count: r.count, seconds, cpuSeconds: r.cpuSeconds, truncated: false };
}

/** nodemailer pooled sending of n messages: rate from the sink's first 250 to its n-th (as for the dispatcher). */
export async function rawPooledSmtp(sink: SinkProcess, o: RawSmtpOptions, onChild: (pid: number) => void = () => undefined): Promise<RawResult> {
  const { done } = await sink.expect(o.n, o.timeLimitMs, o.signal);
  const r = await runJob({ mode: 'smtp-pooled', host: sink.host, port: sink.port, tag: o.tag, n: o.n, concurrency: o.concurrency, maxConnections: o.maxConnections, timeLimitMs: o.timeLimitMs }, o.timeLimitMs + 30_000, onChild);
  const w = await done;
  const seconds = (w.lastAt - w.firstAt) / 1000;
  return { rate: (o.n - 1) / seconds, count: r.count, seconds, cpuSeconds: r.cpuSeconds, truncated: false };
}

/** nodemailer without a pool (a connection per message), `concurrency` at once, until n or the time limit. */
export async function rawNewConnectionSmtp(sink: SinkProcess, o: Omit<RawSmtpOptions, 'maxConnections'>, onChild: (pid: number) => void = () => undefined): Promise<RawResult> {
  const r = await runJob({ mode: 'smtp-new-connection', host: sink.host, port: sink.port, tag: o.tag, n: o.n, concurrency: o.concurrency, timeLimitMs: o.timeLimitMs }, o.timeLimitMs + 30_000, onChild);
  const seconds = (r.endAt - r.startAt) / 1000;
  return { rate: r.count / seconds, count: r.count, seconds, cpuSeconds: r.cpuSeconds, truncated: r.count < o.n };
}
