/**
 * `npm run bench -- smtp-gateway`: messages accepted per second through the SMTP gateway (STARTTLS,
 * AUTH PLAIN with an API key, every 250 after the broker acknowledged the record and its accepted
 * event) — beside a bare `smtp-server` with the same TLS certificate, SIZE and AUTH that only
 * counts the messages, in the same run with the same client: nodemailer's pool, the same
 * messages, the same concurrency. Target: ≥ 0.8× the bare server (issue 14).
 *
 * Each server runs in its own process with the same node flags (`postline smtp-gateway` as
 * deployed, against a `postline broker` child; the bare one from smtp-gateway-bare-child.ts), so
 * the client's load in the bench process weighs on both alike. The measurement is repeated for
 * each pool size in POSTLINE_BENCH_SMTP_GATEWAY_CONNECTIONS (default 4,8,16,32; quick: 16); runs
 * alternate which side goes first. Each side's run also reads the CPU the client, the server
 * and the broker spent per message (/proc), and `--profile` writes the gateway's CPU profile.
 *
 * A third side in the same runs, the durable counter, is the same bare server producing each
 * message's bytes as one record with plain kafkajs (acks=-1) to the same broker before its 250:
 * what any gateway that never loses an accepted message pays, built of the same two libraries
 * with nothing else. The gateway's rate over it is what its own work costs (parsing the message,
 * the contract, the record's encoding, the accepted event, logging).
 *
 * Each run also times what every 250 must wait for and a counter never does: one message's
 * record and its accepted event produced together with acks=-1 to the same broker (an fsynced
 * round trip), one at a time. A connection's cycle on the bare server (connections / its
 * rate) plus that round trip bounds the gateway's ratio from above, whatever the gateway does.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import nodemailer from 'nodemailer';
import { Kafka, logLevel } from 'kafkajs';
import { benchRow, type BenchContext, type BenchRow, type BenchSuite, type SuiteResult } from './bench-suite.js';
import { summarize } from './bench-stats.js';
import { processCpuSeconds, startBrokerTarget } from './broker-targets.js';
import { spawnService, stopChild, type ServiceProcess } from './send-path-processes.js';
import { hrtimeUs, type ProfileWindow } from './cpu-profile-summary.js';
import { busyBreakdown } from './send-path-profiles.js';
import { SMTP_GATEWAY_NODE_FLAGS } from '../../shared/node-flags.js';
import { hashApiKey } from '../../shared/http/api-keys.js';
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

const HERE = path.dirname(fileURLToPath(import.meta.url));

/**
 * A bare counter in its own process (smtp-gateway-bare-child.ts), with the node flags the gateway
 * runs with; with `durable`, it produces each message to that broker and topic (acks=-1) before
 * its 250.
 */
async function startBare(keyFile: string, certFile: string, durable?: { bootstrap: string; topic: string }): Promise<{ port: number; child: ChildProcess }> {
  const child = spawn(process.execPath, [...SMTP_GATEWAY_NODE_FLAGS, '--import', 'tsx', path.join(HERE, 'smtp-gateway-bare-child.ts'), keyFile, certFile, String(MAX_BYTES), ...(durable ? [durable.bootstrap, durable.topic] : [])], { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    readline.createInterface({ input: child.stdout! }).on('line', (l) => {
      try {
        const j = JSON.parse(l) as { msg?: string; port?: number };
        if (j.msg === 'bare ready' && j.port) resolve(j.port);
      } catch {
        // not ours
      }
    });
    child.once('exit', (code) => reject(new Error(`bare smtp-server exited ${code}`)));
  });
  return { port, child };
}

/** `postline smtp-gateway` in its own process, as deployed (info logs: every accepted message is logged). */
async function startGateway(bootstrap: string, keyFile: string, certFile: string, profileDir: string | undefined): Promise<{ service: ServiceProcess; port: number }> {
  const service = await spawnService({
    label: 'smtp-gateway',
    args: ['smtp-gateway'],
    env: {
      POSTLINE_KAFKA_BROKERS: bootstrap,
      POSTLINE_KAFKA_PARTITIONS: '2',
      POSTLINE_OPS_HOST: '127.0.0.1',
      POSTLINE_OPS_PORT: '0',
      POSTLINE_INGEST_API_KEYS: JSON.stringify([{ tenant: 'bench', keyHash: hashApiKey(KEY) }]),
      POSTLINE_INGEST_SENDER_DOMAINS: JSON.stringify({ bench: ['bench.test'] }),
      POSTLINE_SMTP_GATEWAY_HOST: '127.0.0.1',
      POSTLINE_SMTP_GATEWAY_SUBMISSION_PORT: '0',
      POSTLINE_SMTP_GATEWAY_SUBMISSIONS_PORT: '0',
      POSTLINE_SMTP_GATEWAY_TLS_KEY_FILE: keyFile,
      POSTLINE_SMTP_GATEWAY_TLS_CERT_FILE: certFile,
      POSTLINE_SMTP_GATEWAY_MAX_MESSAGE_BYTES: String(MAX_BYTES),
      POSTLINE_SMTP_GATEWAY_RATE_LIMIT_MAX: '0',
    },
    ready: (l) => l.msg === 'SMTP gateway ready',
    // As its deployment runs it (SMTP_GATEWAY_NODE_FLAGS; the bare server gets the same).
    stageFlags: SMTP_GATEWAY_NODE_FLAGS,
    nodeArgs: profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [],
  });
  const port = Number(String(service.readyLine.submission ?? '').split(':').pop());
  if (!Number.isInteger(port) || port <= 0) throw new Error(`smtp-gateway ready line without a submission port: ${JSON.stringify(service.readyLine)}`);
  return { service, port };
}

/** Where the gateway's busy time went during the measured runs (its main thread's profile). */
function gatewayProfileNotes(dir: string, pid: number, window: ProfileWindow): string[] {
  const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')) : [];
  // Named CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile; thread 0 is the main thread.
  const file = files.find((f) => f.includes(`.${pid}.0.`));
  if (!file) return [`no CPU profile of the gateway (pid ${pid}) in ${dir}`];
  return [`CPU profile of the gateway: ${path.join(dir, file)}`, busyBreakdown(`smtp-gateway (pid ${pid}), measured runs`, path.join(dir, file), window.toUs > window.fromUs ? window : undefined, 25)];
}

/** CPU ms per message of the client (this process), the server and the broker over one side's run. */
interface CpuPerMessage {
  client: number;
  server: number;
  broker: number;
}

/** Runs `work` (which sends `messages`) and says how much CPU each process spent per message on it. */
async function measuredCpu(serverPid: number, brokerCpu: () => number | null, work: () => Promise<number>): Promise<CpuPerMessage> {
  const client0 = process.cpuUsage();
  const server0 = processCpuSeconds(serverPid) ?? NaN;
  const broker0 = brokerCpu() ?? NaN;
  const sent = await work();
  const client = process.cpuUsage(client0);
  const perMessage = (seconds: number) => (seconds * 1000) / Math.max(1, sent);
  return { client: perMessage((client.user + client.system) / 1e6), server: perMessage((processCpuSeconds(serverPid) ?? NaN) - server0), broker: perMessage((brokerCpu() ?? NaN) - broker0) };
}

/** POSTLINE_BENCH_SMTP_GATEWAY_CONNECTIONS: the client's pool sizes, comma-separated (each both sides, same run). */
function connectionCounts(quick: boolean): number[] {
  const raw = process.env.POSTLINE_BENCH_SMTP_GATEWAY_CONNECTIONS ?? (quick ? '16' : '4,8,16,32');
  const counts = raw.split(',').map((c) => Number(c.trim()));
  if (counts.length === 0 || counts.some((c) => !Number.isInteger(c) || c < 1)) throw new Error('POSTLINE_BENCH_SMTP_GATEWAY_CONNECTIONS: positive integers, comma-separated');
  return counts;
}

/** The rows of one connection count: the accept rates beside the bare counter, and the ceiling the ack alone sets. */
function rowsFor(p: Params, ours: number[], theirs: number[], durable: number[], acks: number[], cpu: { gateway: CpuPerMessage[]; bare: CpuPerMessage[]; durable: CpuPerMessage[] }): BenchRow[] {
  const rows: BenchRow[] = [];
  if (ours.length === 0 || theirs.length === 0) return rows;
  const group = `SMTP submission, nodemailer pool of ${p.connections} STARTTLS connections, ${p.inFlight} messages in flight, ~${(p.bodyBytes / 1000).toFixed(0)} kB each`;
  const baseline = { name: 'bare smtp-server (TLS, AUTH, counts only)', unit: 'messages/s', value: summarize(theirs) };
  const ms = (xs: CpuPerMessage[], k: keyof CpuPerMessage) => summarize(xs.map((x) => x[k]).filter(Number.isFinite));
  /** `top` over `bottom`, run by run (the same run's figures divided). */
  const ratio = (name: string, top: number[], bottom: number[], bottomName: string, target?: number): BenchRow =>
    benchRow({ group, name, unit: '×', better: 'higher', value: summarize(top.map((t, i) => t / bottom[i])), baseline: { name: bottomName, unit: '×', value: summarize(bottom.map(() => 1)) }, ...(target === undefined ? {} : { target: { op: '>=' as const, value: target } }) });
  rows.push(
    benchRow({ group, name: 'gateway: accepted (250 after the broker ack)', unit: 'messages/s', better: 'higher', value: summarize(ours), baseline }),
    benchRow({
      group,
      name: 'CPU per message: the gateway process',
      unit: 'ms',
      better: 'lower',
      value: ms(cpu.gateway, 'server'),
      also: [
        { label: 'broker', unit: 'ms', value: ms(cpu.gateway, 'broker') },
        { label: 'client', unit: 'ms', value: ms(cpu.gateway, 'client') },
      ],
      baseline: { name: 'the bare smtp-server process (its client: see notes)', unit: 'ms', value: ms(cpu.bare, 'server') },
    }),
    ratio('gateway relative to the bare server (same run)', ours, theirs, 'bare smtp-server', 0.8),
  );
  if (durable.length === ours.length && durable.length > 0) {
    rows.push(
      benchRow({
        group,
        name: 'durable counter: smtp-server + kafkajs, 250 after an acks=-1 produce of the message',
        unit: 'messages/s',
        better: 'higher',
        value: summarize(durable),
        also: [
          { label: 'its CPU', unit: 'ms', value: ms(cpu.durable, 'server') },
          { label: 'broker', unit: 'ms', value: ms(cpu.durable, 'broker') },
        ],
        baseline,
      }),
      ratio('durable counter relative to the bare server (same run): the most these two libraries leave a durable gateway', durable, theirs, 'bare smtp-server'),
      ratio('gateway relative to the durable counter (same run): what parsing, the contract and the event cost', ours, durable, 'durable counter'),
    );
  }
  if (acks.length > 0 && theirs.length === acks.length) {
    // A bare connection's cycle is connections / rate; the gateway's is at least that plus the ack.
    const cycles = theirs.map((t) => (p.connections / t) * 1000);
    rows.push(
      benchRow({ group, name: 'broker ack: record + accepted event, acks=-1 (fsync), one at a time', unit: 'ms', better: 'lower', value: summarize(acks), baseline: { name: 'bare smtp-server: one connection’s message cycle', unit: 'ms', value: summarize(cycles) } }),
      ratio('ceiling of the ratio from the ack alone: cycle / (cycle + ack)', cycles.map((c, i) => c / (c + acks[i])), cycles.map(() => 1), 'bare smtp-server'),
    );
  }
  return rows;
}

export const suite: BenchSuite = {
  name: 'smtp-gateway',
  description: 'SMTP gateway: accepted messages/s (STARTTLS, AUTH, acked by the broker) vs a bare smtp-server that only counts, same client and run, each server in its own process',
  timeLimitMs: { full: 20 * 60_000, quick: 10 * 60_000 },
  async run(ctx: BenchContext): Promise<SuiteResult> {
    const base = ctx.quick ? QUICK : FULL;
    const counts = connectionCounts(ctx.quick);
    const cert = ensureSelfSignedCert(path.join(ctx.tmpDir, 'tls'));
    const broker = await startBrokerTarget('child-process', { dataDir: path.join(ctx.tmpDir, 'broker') });
    const profileDir = ctx.profile ? path.join(ctx.outDir, `profiles-smtp-gateway-${Date.now()}`) : undefined;
    const rows: BenchRow[] = [];
    const notes = ['broker: postline broker in a child process; the gateway (postline smtp-gateway), the bare smtp-server and the durable counter each in their own process (same node flags); the client (nodemailer) in the bench process'];
    const failures: string[] = [];
    const window: ProfileWindow = { fromUs: 0, toUs: 0 };
    let gateway: { service: ServiceProcess; port: number } | undefined;
    let bare: { port: number; child: ChildProcess } | undefined;
    let durableBare: { port: number; child: ChildProcess } | undefined;
    try {
      gateway = await startGateway(broker.bootstrap, cert.keyFile, cert.certFile, profileDir);
      bare = await startBare(cert.keyFile, cert.certFile);
      // After the gateway, which created the topics: it writes where the gateway writes.
      durableBare = await startBare(cert.keyFile, cert.certFile, { bootstrap: broker.bootstrap, topic: Topics.requestedFor('transactional') });
      for (const connections of counts) {
        if (ctx.signal.aborted) break;
        const p = { ...base, connections, inFlight: Math.max(base.inFlight, connections * 4) };
        const ours: number[] = [];
        const theirs: number[] = [];
        const durables: number[] = [];
        const acks: number[] = [];
        const cpu = { gateway: [] as CpuPerMessage[], bare: [] as CpuPerMessage[], durable: [] as CpuPerMessage[] };
        // Warm every side (JIT, TLS session setup, topic leaders) before measuring.
        await sendAll(gateway.port, { ...p, messages: 200 }, 'warm-up', ctx.signal);
        await sendAll(bare.port, { ...p, messages: 200 }, 'warm-up', ctx.signal);
        await sendAll(durableBare.port, { ...p, messages: 200 }, 'warm-up', ctx.signal);
        if (window.fromUs === 0) window.fromUs = hrtimeUs();
        for (let run = 0; run < ctx.runs && !ctx.signal.aborted; run++) {
          let gw = 0;
          let counter = 0;
          let durable = 0;
          const side = (port: number, pid: number, label: string, set: (rate: number) => void) => () =>
            measuredCpu(pid, () => broker.cpuSeconds(), async () => {
              const r = await sendAll(port, p, label, ctx.signal);
              set(r.rate);
              return r.sent;
            });
          const a = async () => void cpu.gateway.push(await side(gateway!.port, gateway!.service.pid, `gateway run ${run}`, (r) => (gw = r))());
          const b = async () => void cpu.bare.push(await side(bare!.port, bare!.child.pid!, `bare run ${run}`, (r) => (counter = r))());
          const c = async () => void cpu.durable.push(await side(durableBare!.port, durableBare!.child.pid!, `durable run ${run}`, (r) => (durable = r))());
          // Each run starts with another side (gateway, bare, durable; bare, durable, gateway; …).
          const order = [a, b, c];
          for (let k = 0; k < order.length; k++) await order[(k + run) % order.length]();
          const ack = await ackRoundTrip(broker.bootstrap, ctx.quick ? 100 : 300, ctx.signal);
          // A run cut short by the time limit is not a sample (a side may have sent nothing).
          if (ctx.signal.aborted) break;
          ours.push(gw);
          theirs.push(counter);
          durables.push(durable);
          acks.push(ack);
          ctx.progress(`${connections} connections, run ${run + 1}: gateway ${gw.toFixed(0)}/s, bare smtp-server ${counter.toFixed(0)}/s (${(gw / counter).toFixed(2)}×), durable counter ${durable.toFixed(0)}/s (${(durable / counter).toFixed(2)}×), broker ack ${ack.toFixed(2)} ms`);
        }
        rows.push(...rowsFor(p, ours, theirs, durables, acks, cpu));
        const c = (xs: CpuPerMessage[], k: keyof CpuPerMessage) => summarize(xs.map((x) => x[k]).filter(Number.isFinite)).median.toFixed(3);
        notes.push(`${connections} connections, CPU ms per message (median): gateway side: gateway ${c(cpu.gateway, 'server')}, broker ${c(cpu.gateway, 'broker')}, client ${c(cpu.gateway, 'client')}; bare side: server ${c(cpu.bare, 'server')}, broker ${c(cpu.bare, 'broker')}, client ${c(cpu.bare, 'client')}; durable counter side: server ${c(cpu.durable, 'server')}, broker ${c(cpu.durable, 'broker')}, client ${c(cpu.durable, 'client')}`);
      }
      window.toUs = hrtimeUs();
    } catch (err) {
      failures.push((err as Error).message);
    } finally {
      if (bare) await stopChild(bare.child);
      if (durableBare) await stopChild(durableBare.child);
      if (gateway) await gateway.service.stop('SIGTERM');
      await broker.close();
      if (profileDir && gateway) notes.push(...gatewayProfileNotes(profileDir, gateway.service.pid, window));
    }
    return { rows, params: { ...base, connections: counts.join(',') }, notes, failures };
  },
};
