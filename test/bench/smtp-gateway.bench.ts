/**
 * `npm run bench -- smtp-gateway`: messages accepted per second through the SMTP gateway (STARTTLS,
 * AUTH PLAIN with an API key, every 250 after the broker acknowledged the record and its accepted
 * event; the embedded broker in a child process, as deployed) — beside a bare `smtp-server` with
 * the same TLS certificate, SIZE and AUTH that only counts the messages, in the same run with the
 * same client: nodemailer's pool (a few connections), the same messages, the same concurrency.
 * Runs alternate which side goes first. Target: ≥ 0.8× the bare server (issue 14).
 *
 * Each run also times what every 250 must wait for and a counter never does: one message's
 * record and its accepted event produced together with acks=-1 to the same broker (an fsynced
 * round trip), one at a time. A connection's cycle on the bare server (connections / its
 * rate) plus that round trip bounds the gateway's ratio from above, whatever the gateway does.
 */
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import nodemailer from 'nodemailer';
import { Kafka, logLevel } from 'kafkajs';
import { SMTPServer } from 'smtp-server';
import { benchRow, type BenchContext, type BenchRow, type BenchSuite, type SuiteResult } from './bench-suite.js';
import { summarize } from './bench-stats.js';
import { startBrokerTarget } from './broker-targets.js';
import { loadPostlineConfig } from '../../shared/config.js';
import { hashApiKey } from '../../shared/http/api-keys.js';
import { startSmtpGateway } from '../../services/smtp-gateway/main.js';
import { Topics } from '../../shared/topics.js';
import { ensureSelfSignedCert } from '../../services/smtp-gateway/self-signed-cert.js';

interface Params {
  messages: number;
  /** sendMail calls in flight at once (the pool queues them on its connections). */
  inFlight: number;
  connections: number;
  bodyBytes: number;
}
const FULL: Params = { messages: 5_000, inFlight: 64, connections: 4, bodyBytes: 4_000 };
const QUICK: Params = { messages: 600, inFlight: 32, connections: 4, bodyBytes: 4_000 };
const KEY = 'pl_bench_smtp_gateway_0123456789abcdef';
const MAX_BYTES = 10 * 1024 * 1024;

/** A bare smtp-server: STARTTLS, AUTH PLAIN accepting any password, SIZE; counts messages and says 250. */
async function startBareServer(tls: { key: Buffer; cert: Buffer }): Promise<{ port: number; count(): number; close(): Promise<void> }> {
  let count = 0;
  const server = new SMTPServer({
    key: tls.key,
    cert: tls.cert,
    size: MAX_BYTES,
    authMethods: ['PLAIN', 'LOGIN'],
    logger: false,
    onAuth: (_auth, _session, cb) => cb(null, { user: 'bench' }),
    onData(stream, _session, cb) {
      stream.on('data', () => undefined);
      stream.on('end', () => {
        count++;
        cb(null, `2.0.0 counted ${count}`);
      });
    },
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return { port: (server.server.address() as { port: number }).port, count: () => count, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

/** Sends `p.messages` through a pooled STARTTLS transport to `port`; messages/s. */
async function sendAll(port: number, p: Params, label: string, signal: AbortSignal): Promise<{ rate: number; sent: number }> {
  const transport = nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    secure: false,
    requireTLS: true,
    tls: { rejectUnauthorized: false },
    auth: { user: 'apikey', pass: KEY },
    pool: true,
    maxConnections: p.connections,
    maxMessages: Infinity,
  });
  const body = `${'Postline bench line of text, the same for both servers.'.padEnd(74, '.')}\r\n`.repeat(Math.ceil(p.bodyBytes / 76));
  let next = 0;
  let sent = 0;
  const t0 = performance.now();
  const worker = async (): Promise<void> => {
    while (next < p.messages && !signal.aborted) {
      const i = next++;
      await transport.sendMail({ from: 'Bench <bench@bench.test>', to: `r${i % 50}@example${i % 7}.org`, subject: `${label} ${i}`, text: body, headers: { 'X-Postline-Tags': 'bench' } });
      sent++;
    }
  };
  try {
    await Promise.all(Array.from({ length: p.inFlight }, worker));
  } finally {
    transport.close();
  }
  return { rate: sent / ((performance.now() - t0) / 1000), sent };
}

/**
 * Median ms of `count` sequential acks=-1 produces of a ~5.6 kB record and a ~300-byte event in
 * one request (as the gateway sends a message's record and accepted event), idempotent producer
 * as the gateway's: the broker's part of every 250.
 */
async function ackRoundTrip(bootstrap: string, count: number, signal: AbortSignal): Promise<number> {
  const producer = new Kafka({ clientId: 'bench-ack', brokers: [bootstrap], logLevel: logLevel.NOTHING }).producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const record = Buffer.alloc(5600, 'x');
  const event = Buffer.alloc(300, 'y');
  const times: number[] = [];
  try {
    for (let i = 0; i < count && !signal.aborted; i++) {
      const key = `ack-${i}`;
      const t0 = performance.now();
      await producer.sendBatch({ acks: -1, topicMessages: [{ topic: Topics.requestedFor('transactional'), messages: [{ key, value: record }] }, { topic: Topics.events, messages: [{ key, value: event }] }] });
      times.push(performance.now() - t0);
    }
  } finally {
    await producer.disconnect();
  }
  return summarize(times).median;
}

export const suite: BenchSuite = {
  name: 'smtp-gateway',
  description: 'SMTP gateway: accepted messages/s (STARTTLS, AUTH, acked by the broker) vs a bare smtp-server that only counts, same client and run',
  timeLimitMs: { full: 15 * 60_000, quick: 4 * 60_000 },
  async run(ctx: BenchContext): Promise<SuiteResult> {
    const base = ctx.quick ? QUICK : FULL;
    // POSTLINE_BENCH_SMTP_GATEWAY_CONNECTIONS: the client's pool size (both sides, same run); default 4.
    const connections = Number(process.env.POSTLINE_BENCH_SMTP_GATEWAY_CONNECTIONS ?? base.connections);
    if (!Number.isInteger(connections) || connections < 1) throw new Error('POSTLINE_BENCH_SMTP_GATEWAY_CONNECTIONS: a positive integer');
    const p = { ...base, connections, inFlight: Math.max(base.inFlight, connections * 4) };
    const cert = ensureSelfSignedCert(path.join(ctx.tmpDir, 'tls'));
    const tls = { key: fs.readFileSync(cert.keyFile), cert: fs.readFileSync(cert.certFile) };
    const broker = await startBrokerTarget('child-process', { dataDir: path.join(ctx.tmpDir, 'broker') });
    const bare = await startBareServer(tls);
    const config = loadPostlineConfig({
      env: {},
      overrides: {
        'log.level': 'warn',
        'kafka.brokers': [broker.bootstrap],
        'kafka.partitions': 2,
        'ops.host': '127.0.0.1',
        'ops.port': 0,
        'ingest.apiKeys': [{ tenant: 'bench', keyHash: hashApiKey(KEY) }],
        'ingest.senderDomains': { bench: ['bench.test'] },
        'smtpGateway.host': '127.0.0.1',
        'smtpGateway.submissionPort': 0,
        'smtpGateway.submissionsPort': 0,
        'smtpGateway.tlsKeyFile': cert.keyFile,
        'smtpGateway.tlsCertFile': cert.certFile,
        'smtpGateway.maxMessageBytes': MAX_BYTES,
        'smtpGateway.rateLimitMax': 0,
      },
    });
    const gateway = await startSmtpGateway(config, { logger: pino({ level: 'warn' }) });
    const ours: number[] = [];
    const theirs: number[] = [];
    const acks: number[] = [];
    const failures: string[] = [];
    try {
      // Warm both sides (JIT, TLS session setup, topic leaders) before measuring.
      await sendAll(gateway.submissionPort, { ...p, messages: 200 }, 'warm-up', ctx.signal);
      await sendAll(bare.port, { ...p, messages: 200 }, 'warm-up', ctx.signal);
      for (let run = 0; run < ctx.runs && !ctx.signal.aborted; run++) {
        let gw = 0;
        let counter = 0;
        const a = async () => void (gw = (await sendAll(gateway.submissionPort, p, `gateway run ${run}`, ctx.signal)).rate);
        const b = async () => void (counter = (await sendAll(bare.port, p, `bare run ${run}`, ctx.signal)).rate);
        if (run % 2 === 0) {
          await a();
          await b();
        } else {
          await b();
          await a();
        }
        const ack = await ackRoundTrip(broker.bootstrap, ctx.quick ? 100 : 300, ctx.signal);
        // A run cut short by the time limit is not a sample (a side may have sent nothing).
        if (ctx.signal.aborted) break;
        ours.push(gw);
        theirs.push(counter);
        acks.push(ack);
        ctx.progress(`run ${run + 1}: gateway ${gw.toFixed(0)}/s, bare smtp-server ${counter.toFixed(0)}/s, broker ack ${ack.toFixed(2)} ms`);
      }
    } catch (err) {
      failures.push((err as Error).message);
    } finally {
      await gateway.close();
      await bare.close();
      await broker.close();
    }
    const rows: BenchRow[] = [];
    if (ours.length > 0 && theirs.length > 0) {
      const group = `SMTP submission, nodemailer pool of ${p.connections} STARTTLS connections, ${p.inFlight} messages in flight, ~${(p.bodyBytes / 1000).toFixed(0)} kB each`;
      const baseline = { name: 'bare smtp-server (TLS, AUTH, counts only)', unit: 'messages/s', value: summarize(theirs) };
      rows.push(
        benchRow({ group, name: 'gateway: accepted (250 after the broker ack)', unit: 'messages/s', better: 'higher', value: summarize(ours), baseline }),
        benchRow({
          group,
          name: 'gateway relative to the bare server (same run)',
          unit: '×',
          better: 'higher',
          value: summarize(ours.map((o, i) => o / theirs[i])),
          baseline: { name: 'bare smtp-server', unit: '×', value: summarize(theirs.map(() => 1)) },
          target: { op: '>=', value: 0.8 },
        }),
      );
    }
    if (acks.length > 0 && theirs.length === acks.length) {
      const group = `What each 250 waits for and a counter does not (same broker, same run, ${p.connections} connections)`;
      // A bare connection's cycle is connections / rate; the gateway's is at least that plus the ack.
      const cycles = theirs.map((t) => (p.connections / t) * 1000);
      rows.push(
        benchRow({ group, name: 'broker ack: record + accepted event, acks=-1 (fsync), one at a time', unit: 'ms', better: 'lower', value: summarize(acks), baseline: { name: 'bare smtp-server: one connection’s message cycle', unit: 'ms', value: summarize(cycles) } }),
        benchRow({
          group,
          name: 'ceiling of the ratio from the ack alone: cycle / (cycle + ack)',
          unit: '×',
          better: 'higher',
          value: summarize(cycles.map((c, i) => c / (c + acks[i]))),
          baseline: { name: 'bare smtp-server', unit: '×', value: summarize(theirs.map(() => 1)) },
          target: { op: '>=', value: 0.8 },
        }),
      );
    }
    return { rows, params: { ...p }, notes: ['broker: postline broker in a child process; gateway, bare server and client in the bench process'], failures };
  },
};
