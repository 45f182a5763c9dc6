/**
 * The raw-library baselines of the send-path benchmark, one job per process (forked by
 * send-path-raw-baselines.ts, fresh for every run, as cold as a freshly started stage):
 *
 * - `render`: Handlebars + MailComposer for n messages, `concurrency` at once (the renderer's
 *   default in-flight count), no Kafka;
 * - `smtp-pooled`: nodemailer `createTransport({ pool: true, maxConnections })` sending n raw
 *   messages (the same template rendered the same way) to the sink, `lanes` sends at once;
 * - `smtp-new-connection`: nodemailer without a pool — a new connection (greeting, EHLO, QUIT)
 *   per message — `lanes` at once, stopping at n or `timeLimitMs`.
 *
 * Replies `{ type: 'done', startAt, endAt, count, errors, firstError?, cpuSeconds }` (epoch ms).
 */
import nodemailer from 'nodemailer';
import { recipient, rawRenderer, FROM } from './send-path-workload.js';

interface Job {
  mode: 'render' | 'smtp-pooled' | 'smtp-new-connection';
  tag: string;
  n: number;
  concurrency: number;
  host?: string;
  port?: number;
  maxConnections?: number;
  /** Distinct messages to render up front and cycle through (SMTP modes). */
  distinct?: number;
  timeLimitMs?: number;
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

async function run(job: Job): Promise<Record<string, unknown>> {
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
