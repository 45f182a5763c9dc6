/**
 * `npm run bench -- webhooks [--profile]`: webhook deliveries per second to a local receiver (a
 * bare node:http server in its own process), through the webhooks service's delivery path —
 * `deliveriesFor` on decoded records, the Deliverer (per-endpoint lanes and opossum breakers,
 * Standard Webhooks signing, the delivery log batched by the DeliveryLogWriter through a real
 * BatchingProducer) over the WebhookClient (undici `dispatch` with a small handler, the SSRF
 * guard's connect-time lookup, timeouts, size cap) — beside two raw undici baselines of the same
 * bodies, each over its own Agent with the same connections per origin (32, pipelining 1 on all)
 * and the same number in flight, in the same run: `request()` POSTs (the "raw undici
 * POSTs", as measured in every session) and `dispatch` POSTs with a minimal handler (the
 * cheapest POST undici makes, and the way the WebhookClient sends: the Deliverer's cost over
 * it is everything the delivery path adds). All sides are warmed up first. Targets: ≥ 5,000/s
 * and ≥ 0.8× the `request()` POSTs.
 *
 * What the delivery path does that the raw POSTs do not, and keeps: an HMAC per delivery and
 * four more headers (webhook-id, -timestamp, -signature, user-agent), a breaker call, the lane's
 * order and in-flight bookkeeping, and the log entry. The CPU rows give the CPU time of this
 * process per delivery against per raw POST: on a loaded machine they are steadier than the
 * rates, and their difference to the raw dispatch is what the delivery path's own work costs.
 * Kafka is not in this loop (the BatchingProducer's kafkajs producer acks at once; records are
 * decoded before the loop): the consume side's throughput is the broker's and the stage
 * consumer's, measured by the broker and send-path suites. `--profile` then profiles one pass of
 * each side (the inspector, in this process) and summarises both.
 */
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Session } from 'node:inspector/promises';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { Agent, request, type Dispatcher } from 'undici';
import type { KafkaMessage, Producer, ProducerBatch } from 'kafkajs';
import { loadPostlineConfig } from '../../shared/config.js';
import { SsrfGuard } from '../../shared/http/ssrf-guard.js';
import { MemoryTable } from '../webhooks/memory-endpoint-table.js';
import { EndpointBook } from '../../shared/webhooks/endpoint-book.js';
import { Topics } from '../../shared/topics.js';
import { BatchingProducer } from '../../shared/kafka/batching-producer.js';
import type { WebhookEndpoint } from '../../shared/contracts/webhook-endpoint.js';
import { EMAIL_EVENT_VERSION, EmailEventContract, type EmailEvent } from '../../shared/contracts/email-event.js';
import { Deliverer } from '../../services/webhooks/deliverer.js';
import { deliveriesFor, payloadOf, type RecordPayload } from '../../services/webhooks/record-deliveries.js';
import { WebhookClient } from '../../services/webhooks/webhook-client.js';
import { benchRow, type BenchContext, type BenchSuite, type SuiteResult } from './bench-suite.js';
import { summarize } from './bench-stats.js';
import { formatProfileSummary, hrtimeUs, summarizeProfile } from './cpu-profile-summary.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ENDPOINTS = 4;
const CONNECTIONS = 32;
/** Deliveries in flight, for both sides: the baseline's workers, the Deliverer's endpoints × their concurrency. */
const IN_FLIGHT = 256;

function startReceiver(): Promise<{ port: number; child: ChildProcess }> {
  const child = fork(path.join(HERE, 'webhooks-receiver-child.ts'), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`receiver exited ${code}`)));
    child.stdout!.once('data', (d: Buffer) => resolve({ port: (JSON.parse(d.toString()) as { port: number }).port, child }));
  });
}

/**
 * `n` `sent` events as the events consumer has them once a record is decoded (`payloadOf`: the
 * body is built then, around the record's JSON), round robin over the endpoints' tenants. What
 * follows the decode — `deliveriesFor` and the delivery — is in the measured loop.
 */
function records(endpoints: WebhookEndpoint[], n: number): RecordPayload[] {
  const at = new Date().toISOString();
  return Array.from({ length: n }, (_, i) => {
    const e = endpoints[i % endpoints.length];
    const event: EmailEvent = { schemaVersion: EMAIL_EVENT_VERSION, eventId: randomUUID(), type: 'sent', messageId: `msg-${i}`, tenant: e.tenant, at, stage: 'dispatcher', recipients: ['someone@example.org'], domain: 'example.org', attempt: 1, smtp: { code: 250, message: '2.0.0 Ok: queued as 4F2A1' }, latencyMs: 840 };
    return payloadOf(Topics.events, { key: null, value: EmailEventContract.encode(event) } as KafkaMessage);
  });
}

/** A kafkajs producer that acks every batch at once: the delivery log's BatchingProducer runs for real, Kafka does not. */
function ackingProducer(counts: { records: number }): Producer {
  return {
    sendBatch: async ({ topicMessages }: ProducerBatch) => {
      for (const t of topicMessages ?? []) counts.records += t.messages.length;
      return (topicMessages ?? []).map((t) => ({ topicName: t.topic, partition: 0, errorCode: 0 }));
    },
  } as unknown as Producer;
}

/** `--profile`: runs `workload` once under the inspector's profiler; returns the summary of its window. */
async function profiled(dir: string, slug: string, title: string, workload: () => Promise<unknown>): Promise<string> {
  const session = new Session();
  session.connect();
  try {
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
    const window = { fromUs: hrtimeUs(), toUs: 0 };
    await workload();
    window.toUs = hrtimeUs();
    const { profile } = await session.post('Profiler.stop');
    const file = path.join(dir, `${slug}.cpuprofile`);
    fs.writeFileSync(file, JSON.stringify(profile));
    return formatProfileSummary(`profile: ${title} (${path.relative(process.cwd(), file)})`, summarizeProfile(file, 25, window));
  } finally {
    session.disconnect();
  }
}

/** The raw `dispatch` baseline's handler: resolves at the end of the response, dropping the body; counts what failed. */
class RawPostHandler implements Dispatcher.DispatchHandler {
  private status = 0;
  constructor(
    private readonly done: () => void,
    private readonly failures: { n: number },
  ) {}
  onRequestStart(): void {}
  onResponseStart(_c: Dispatcher.DispatchController, statusCode: number): void {
    this.status = statusCode;
  }
  onResponseData(): void {}
  onResponseEnd(): void {
    if (this.status !== 200) this.failures.n++;
    this.done();
  }
  onResponseError(): void {
    this.failures.n++;
    this.done();
  }
}

interface PoolRun {
  /** Per second of wall time. */
  rate: number;
  /** CPU time of this process (user + system) per item, µs: what the path costs, less sensitive than the rate to other processes. */
  cpuUs: number;
}

/** Runs `work(i)` for i < n with `inFlight` at once. */
async function pool(n: number, inFlight: number, work: (i: number) => Promise<void>): Promise<PoolRun> {
  let next = 0;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < n) await work(next++);
    }),
  );
  const cpu = process.cpuUsage(cpu0);
  return { rate: n / ((performance.now() - t0) / 1000), cpuUs: (cpu.user + cpu.system) / n };
}

export const suite: BenchSuite = {
  name: 'webhooks',
  description: 'webhook deliveries/s through the Deliverer and WebhookClient (signing, lanes, breakers, SSRF guard) vs raw undici POSTs of the same bodies',
  timeLimitMs: { full: 10 * 60_000, quick: 3 * 60_000, profile: 60_000 },
  async run(ctx: BenchContext): Promise<SuiteResult> {
    const n = ctx.quick ? 5_000 : 30_000;
    const { port, child } = await startReceiver();
    const url = `http://127.0.0.1:${port}/hook`;
    const config = loadPostlineConfig({ env: {}, overrides: { 'webhooks.allowPrivate': ['127.0.0.1'], 'webhooks.allowHttp': true, 'webhooks.endpointConcurrency': IN_FLIGHT / ENDPOINTS, 'webhooks.concurrency': IN_FLIGHT } }).webhooks;
    const table = new MemoryTable();
    const book = new EndpointBook(table);
    const endpoints: WebhookEndpoint[] = [];
    for (let i = 0; i < ENDPOINTS; i++) endpoints.push(await book.create(`tenant-${i}`, { url }));
    const guard = new SsrfGuard({ allow: config.allowPrivate, allowHttp: true });
    const client = new WebhookClient({ guard, timeoutMs: config.timeoutMs, connectTimeoutMs: config.connectTimeoutMs, maxResponseBytes: config.maxResponseBytes, connections: CONNECTIONS });
    const logged = { records: 0 };
    const producer = new BatchingProducer(ackingProducer(logged));
    const deliverer = new Deliverer({ book, client, producer, events: { publish: async () => ({}) as never }, logger: pino({ level: 'warn' }), config });
    let failed = 0;
    let attempts = 0;
    deliverer.on('attempt', (outcome: string) => void (outcome === 'delivered' ? attempts++ : failed++));
    const raw = new Agent({ connections: CONNECTIONS, keepAliveTimeout: 30_000 });
    const rawD = new Agent({ connections: CONNECTIONS, keepAliveTimeout: 30_000 });
    const origin = new URL(url).origin;
    const rawFailures = { n: 0 };
    const measured: PoolRun[] = [];
    const baseline: PoolRun[] = [];
    const dispatched: PoolRun[] = [];
    const profiles: string[] = [];
    try {
      const rawPosts = (list: RecordPayload[]) => (i: number) =>
        request(url, { method: 'POST', dispatcher: raw, headers: { 'content-type': 'application/json' }, body: list[i].body }).then(
          async (res) => {
            await res.body.dump();
            if (res.statusCode !== 200) failed++;
          },
          // Counted like the Deliverer's failed attempts (which are not thrown either), not the end of the suite.
          () => void failed++,
        );
      const rawDispatches = (list: RecordPayload[]) => (i: number) =>
        new Promise<void>((done) => {
          rawD.dispatch({ origin, path: '/hook', method: 'POST', headers: ['content-type', 'application/json'], body: list[i].body }, new RawPostHandler(done, rawFailures));
        });
      const delivered = (list: RecordPayload[]) => (i: number) => deliverer.submit(deliveriesFor(list[i], book.endpointsOf(list[i].tenant), new Date())[0]);
      // Warm-up of both sides: connections open, JIT warm.
      const warm = records(endpoints, 2_000);
      await pool(warm.length, IN_FLIGHT, rawPosts(warm));
      await pool(warm.length, IN_FLIGHT, rawDispatches(warm));
      await pool(warm.length, IN_FLIGHT, delivered(warm));
      for (let run = 0; run < ctx.runs; run++) {
        const list = records(endpoints, n);
        baseline.push(await pool(n, IN_FLIGHT, rawPosts(list)));
        dispatched.push(await pool(n, IN_FLIGHT, rawDispatches(list)));
        measured.push(await pool(n, IN_FLIGHT, delivered(list)));
        const [m, b, d] = [measured.at(-1)!, baseline.at(-1)!, dispatched.at(-1)!];
        ctx.progress(
          `run ${run + 1}: deliverer ${m.rate.toFixed(0)}/s (${m.cpuUs.toFixed(1)} µs CPU each), raw undici request ${b.rate.toFixed(0)}/s (${b.cpuUs.toFixed(1)} µs), raw dispatch ${d.rate.toFixed(0)}/s (${d.cpuUs.toFixed(1)} µs)`,
        );
        if (ctx.signal.aborted) break;
      }
      if (ctx.profile && !ctx.signal.aborted) {
        const dir = path.join(ctx.outDir, `profiles-webhooks-${new Date().toISOString().replace(/[:.]/g, '-')}`);
        fs.mkdirSync(dir, { recursive: true });
        const list = records(endpoints, n);
        ctx.progress('profiling: raw undici request(), raw dispatch, then the Deliverer');
        profiles.push(await profiled(dir, 'raw-undici', `raw undici request(), ${n} POSTs`, () => pool(n, IN_FLIGHT, rawPosts(list))));
        profiles.push(await profiled(dir, 'raw-dispatch', `raw undici dispatch, ${n} POSTs`, () => pool(n, IN_FLIGHT, rawDispatches(list))));
        profiles.push(await profiled(dir, 'deliverer', `Deliverer + WebhookClient, ${n} deliveries`, () => pool(n, IN_FLIGHT, delivered(list))));
      }
    } finally {
      await deliverer.close();
      await producer.drain();
      await client.close();
      await raw.close();
      await rawD.close();
      child.kill();
    }
    const row = benchRow({
      group: `webhooks: ${n.toLocaleString('en')} deliveries to a local receiver (${ENDPOINTS} endpoints, ${CONNECTIONS} connections, ${IN_FLIGHT} in flight)`,
      name: 'Deliverer + WebhookClient (signed, logged)',
      unit: 'deliveries/s',
      better: 'higher',
      value: summarize(measured.map((r) => r.rate)),
      baseline: { name: 'raw undici POSTs of the same bodies', unit: 'POSTs/s', value: summarize(baseline.map((r) => r.rate)) },
      target: { op: '>=', value: 5_000 },
    });
    const cpuRow = benchRow({
      group: row.group,
      name: 'CPU per delivery (bench process)',
      unit: 'µs',
      better: 'lower',
      value: summarize(measured.map((r) => r.cpuUs)),
      baseline: { name: 'CPU per raw undici POST', unit: 'µs', value: summarize(baseline.map((r) => r.cpuUs)) },
    });
    const dispatchRow = benchRow({
      group: row.group,
      name: 'Deliverer + WebhookClient (signed, logged)',
      unit: 'deliveries/s',
      better: 'higher',
      value: summarize(measured.map((r) => r.rate)),
      baseline: { name: 'raw undici dispatch, minimal handler', unit: 'POSTs/s', value: summarize(dispatched.map((r) => r.rate)) },
    });
    const dispatchCpuRow = benchRow({
      group: row.group,
      name: 'CPU per delivery (bench process)',
      unit: 'µs',
      better: 'lower',
      value: summarize(measured.map((r) => r.cpuUs)),
      baseline: { name: 'CPU per raw undici dispatch', unit: 'µs', value: summarize(dispatched.map((r) => r.cpuUs)) },
    });
    failed += rawFailures.n;
    const ratioMet = row.ratio >= 0.8;
    return {
      rows: [row, cpuRow, dispatchRow, dispatchCpuRow],
      params: { deliveries: n, endpoints: ENDPOINTS, connections: CONNECTIONS, inFlight: IN_FLIGHT },
      notes: [
        `ratio to raw undici request() POSTs ${row.ratio.toFixed(2)} (target ≥ 0.8: ${ratioMet ? 'met' : 'MISSED'}); to raw undici dispatch POSTs ${dispatchRow.ratio.toFixed(2)}; what the delivery path adds costs ${(dispatchCpuRow.value.median - dispatchCpuRow.baseline.value.median).toFixed(1)} µs CPU per delivery over a raw dispatch; ${failed} failed attempts; ${attempts} attempts logged in ${logged.records} delivery log records`, ...profiles],
      ...(failed > 0 ? { failures: [`${failed} deliveries failed`] } : {}),
    };
  },
};
