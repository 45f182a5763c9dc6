/**
 * `npm run bench -- webhooks`: webhook deliveries per second to a local receiver (a bare
 * node:http server in its own process), through the webhooks service's delivery path — the
 * Deliverer (per-endpoint lanes and breakers, Standard Webhooks signing with the
 * `standardwebhooks` package, the delivery log record) over the WebhookClient (undici, the SSRF
 * guard's connect-time lookup, timeouts, size cap) — beside raw undici POSTs of the same bodies
 * with the same connections and concurrency, in the same run. Target: ≥ 5,000/s and ≥ 0.8×.
 * Kafka is not in this loop (the delivery log records are encoded and handed to an in-memory
 * producer): the consume side's throughput is the broker's and the stage consumer's, measured
 * by the broker and send-path suites.
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { Agent, request } from 'undici';
import { loadPostlineConfig } from '../../shared/config.js';
import { SsrfGuard } from '../../shared/http/ssrf-guard.js';
import { EndpointBook, type EndpointTable } from '../../shared/webhooks/endpoint-book.js';
import { webhookBody } from '../../shared/webhooks/webhook-message.js';
import type { WebhookEndpoint } from '../../shared/contracts/webhook-endpoint.js';
import { EMAIL_EVENT_VERSION, type EmailEvent } from '../../shared/contracts/email-event.js';
import { Deliverer, type Delivery } from '../../services/webhooks/deliverer.js';
import { WebhookClient } from '../../services/webhooks/webhook-client.js';
import { benchRow, type BenchContext, type BenchSuite, type SuiteResult } from './bench-suite.js';
import { summarize } from './bench-stats.js';

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

class MemoryTable implements EndpointTable {
  readonly map = new Map<string, WebhookEndpoint>();
  get(key: string) {
    return this.map.get(key);
  }
  entries() {
    return this.map.entries();
  }
  async put(key: string, value: WebhookEndpoint | null) {
    if (value) this.map.set(key, value);
    else this.map.delete(key);
    return value ?? undefined;
  }
}

function deliveries(endpoints: WebhookEndpoint[], n: number): Delivery[] {
  const at = new Date().toISOString();
  return Array.from({ length: n }, (_, i) => {
    const e = endpoints[i % endpoints.length];
    const event: EmailEvent = { schemaVersion: EMAIL_EVENT_VERSION, eventId: randomUUID(), type: 'sent', messageId: `msg-${i}`, tenant: e.tenant, at, stage: 'dispatcher', recipients: ['someone@example.org'], domain: 'example.org', attempt: 1, smtp: { code: 250, message: '2.0.0 Ok: queued as 4F2A1' }, latencyMs: 840 };
    return { endpointId: e.id, tenant: e.tenant, webhookId: event.eventId, type: 'email.sent', messageId: event.messageId, timestamp: at, data: event, attempt: 0, firstAttemptAt: at };
  });
}

/** Runs `work(i)` for i < n with `inFlight` at once; resolves with deliveries per second. */
async function pool(n: number, inFlight: number, work: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < n) await work(next++);
    }),
  );
  return n / ((performance.now() - t0) / 1000);
}

export const suite: BenchSuite = {
  name: 'webhooks',
  description: 'webhook deliveries/s through the Deliverer and WebhookClient (signing, lanes, breakers, SSRF guard) vs raw undici POSTs of the same bodies',
  timeLimitMs: { full: 10 * 60_000, quick: 3 * 60_000 },
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
    let logged = 0;
    const producer = { send: async () => void logged++ } as never;
    const deliverer = new Deliverer({ book, client, producer, events: { publish: async () => ({}) as never }, logger: pino({ level: 'warn' }), config });
    let failed = 0;
    deliverer.on('attempt', (outcome: string) => void (outcome !== 'delivered' && failed++));
    const raw = new Agent({ connections: CONNECTIONS, keepAliveTimeout: 30_000 });
    const measured: number[] = [];
    const baseline: number[] = [];
    try {
      // Warm-up: connections open, JIT warm.
      const warm = deliveries(endpoints, 2_000);
      await pool(warm.length, IN_FLIGHT, (i) => deliverer.submit(warm[i]));
      for (let run = 0; run < ctx.runs; run++) {
        const list = deliveries(endpoints, n);
        const bodies = list.map((d) => webhookBody(d.type, new Date(d.timestamp), d.data));
        baseline.push(
          await pool(n, IN_FLIGHT, async (i) => {
            const res = await request(url, { method: 'POST', dispatcher: raw, headers: { 'content-type': 'application/json' }, body: bodies[i] });
            await res.body.dump();
            if (res.statusCode !== 200) failed++;
          }),
        );
        measured.push(await pool(n, IN_FLIGHT, (i) => deliverer.submit(list[i])));
        ctx.progress(`run ${run + 1}: deliverer ${measured.at(-1)!.toFixed(0)}/s, raw undici ${baseline.at(-1)!.toFixed(0)}/s`);
        if (ctx.signal.aborted) break;
      }
    } finally {
      deliverer.close();
      await client.close();
      await raw.close();
      child.kill();
    }
    const row = benchRow({
      group: `webhooks: ${n.toLocaleString('en')} deliveries to a local receiver (${ENDPOINTS} endpoints, ${CONNECTIONS} connections, ${IN_FLIGHT} in flight)`,
      name: 'Deliverer + WebhookClient (signed, logged)',
      unit: 'deliveries/s',
      better: 'higher',
      value: summarize(measured),
      baseline: { name: 'raw undici POSTs of the same bodies', unit: 'POSTs/s', value: summarize(baseline) },
      target: { op: '>=', value: 5_000 },
    });
    const ratioMet = row.ratio >= 0.8;
    return {
      rows: [row],
      params: { deliveries: n, endpoints: ENDPOINTS, connections: CONNECTIONS, inFlight: IN_FLIGHT },
      notes: [`ratio to raw undici ${row.ratio.toFixed(2)} (target ≥ 0.8: ${ratioMet ? 'met' : 'MISSED'}); ${failed} failed attempts; ${logged} delivery log records`],
      ...(failed > 0 ? { failures: [`${failed} deliveries failed`] } : {}),
    };
  },
};
