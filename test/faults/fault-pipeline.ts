/**
 * The pipeline as fault tests run it: the broker as its own process (killable, restartable on the
 * same port and data directory), each stage as its own process (`postline <stage>`), topics
 * created up front, and a reader on email.events, email.dead and email.suppressions. Stage
 * options come through POSTLINE_* environment variables only — short retry tiers, relay
 * addresses, timeouts are configuration, never special-cased code.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { EmailEventContract, type EmailEvent, type EventType } from '../../shared/contracts/email-event.js';
import { DeadLetterContract, type DeadLetter } from '../../shared/contracts/dead-letter.js';
import { EmailReadyForDispatchContract, type EmailReadyForDispatch } from '../../shared/contracts/email-ready-for-dispatch.js';
import { ensureTopics } from '../../shared/kafka/client.js';
import { Topics, topicSpecs } from '../../shared/topics.js';
import { hashApiKey } from '../../services/ingest/api-keys.js';
import { spawnBrokerProcess, tempDir, waitFor, type BrokerProcess } from '../helpers/broker.js';
import { spawnStage, type StageProcess } from '../helpers/stage-process.js';
import { TopicReader } from '../helpers/topic-reader.js';
import { freePort } from '../helpers/free-port.js';

export type Stage = 'renderer' | 'dispatcher' | 'scheduler' | 'ingest';

export const API_KEY = 'pl_fault_test_key_0123456789abcdef';
export const TENANT = 'faults';

export interface PipelineOptions {
  stages: Stage[];
  /** POSTLINE_* settings for every stage (relay host and port, retry delays, ...). */
  env: Record<string, string>;
  partitions?: number;
  /** Extra topic settings, e.g. a larger `max.message.bytes` on one topic (applied when the topics are created). */
  topicConfigs?: Record<string, Record<string, string>>;
}


export class FaultPipeline {
  readonly procs = new Map<Stage, StageProcess>();
  /** Stage restarts and broker restarts done so far, in order. */
  readonly restarts: string[] = [];
  reader!: TopicReader;
  producer!: Producer;
  ingestUrl = '';
  private env: NodeJS.ProcessEnv = {};

  private constructor(
    public broker: BrokerProcess,
    readonly dataDir: string,
    private readonly opts: PipelineOptions,
  ) {}

  static async start(opts: PipelineOptions): Promise<FaultPipeline> {
    const dataDir = tempDir('postline-faults-');
    const broker = await spawnBrokerProcess({ dataDir });
    const p = new FaultPipeline(broker, dataDir, opts);
    try {
      await p.init();
    } catch (err) {
      await p.close();
      throw err;
    }
    return p;
  }

  private async init(): Promise<void> {
    const partitions = this.opts.partitions ?? 2;
    const admin = this.kafka().admin();
    await admin.connect();
    const specs = topicSpecs(partitions).map((s) => {
      const extra = Object.entries(this.opts.topicConfigs?.[s.topic] ?? {}).map(([name, value]) => ({ name, value }));
      return { ...s, configEntries: [...s.configEntries, ...extra] };
    });
    await ensureTopics(admin, specs, 1);
    await admin.disconnect();
    const ingestPort = await freePort();
    this.ingestUrl = `http://127.0.0.1:${ingestPort}`;
    this.env = {
      POSTLINE_KAFKA_BROKERS: this.broker.bootstrap,
      POSTLINE_KAFKA_PARTITIONS: String(partitions),
      POSTLINE_KAFKA_CREATE_TOPICS: 'false',
      POSTLINE_LOG_LEVEL: 'info',
      POSTLINE_OPS_HOST: '127.0.0.1',
      POSTLINE_OPS_PORT: '0',
      POSTLINE_OPS_SHUTDOWN_GRACE_MS: '5000',
      POSTLINE_INGEST_HOST: '127.0.0.1',
      POSTLINE_INGEST_PORT: String(ingestPort),
      POSTLINE_INGEST_API_KEYS: JSON.stringify([{ tenant: TENANT, keyHash: hashApiKey(API_KEY) }]),
      POSTLINE_INGEST_RATE_LIMIT_MAX: '0',
      POSTLINE_DISPATCHER_RELAY_IGNORE_TLS: 'true',
      POSTLINE_DISPATCHER_FETCH_MAX_WAIT_MS: '100',
      ...this.opts.env,
    };
    await Promise.all(this.opts.stages.map((s) => this.startStage(s)));
    this.reader = await new TopicReader(this.broker.bootstrap, [Topics.events, Topics.dead, Topics.suppressions]).start();
    this.producer = this.kafka().producer({ idempotent: true, maxInFlightRequests: 1 });
    await this.producer.connect();
  }

  kafka(): Kafka {
    return new Kafka({ brokers: [this.broker.bootstrap], clientId: 'fault-test', logLevel: logLevel.NOTHING, retry: { retries: 20, maxRetryTime: 2000 } });
  }

  /** Where every stage's output goes (one file per stage, appended across restarts). */
  readonly logDir = tempDir('postline-faults-logs-');

  private closing = false;

  /**
   * Starts a stage process (waiting until it is ready unless `wait` is false). Like a
   * supervisor, a stage that exits on its own (not killed by the test) is started again.
   */
  async startStage(stage: Stage, wait = true): Promise<StageProcess> {
    const proc = await spawnStage(stage, [stage], this.env, { logFile: path.join(this.logDir, `${stage}.log`), waitReady: wait });
    this.procs.set(stage, proc);
    void proc.exited.then(() => {
      if (proc.killed || this.closing || this.procs.get(stage) !== proc) return;
      this.restarts.push(`${stage}(exited)`);
      setTimeout(() => void this.startStage(stage, false).catch(() => undefined), 500);
    });
    return proc;
  }

  /** SIGKILLs a stage and starts it again (same environment, same consumer groups). */
  async crashStage(stage: Stage, wait = true): Promise<void> {
    await this.procs.get(stage)?.kill('SIGKILL');
    this.restarts.push(stage);
    await this.startStage(stage, wait);
  }

  /** Every JSON log line a stage wrote so far, across its restarts. */
  logLines(stage: Stage): Array<Record<string, unknown>> {
    const file = path.join(this.logDir, `${stage}.log`);
    if (!fs.existsSync(file)) return [];
    return fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .flatMap((l) => {
        try {
          return [JSON.parse(l) as Record<string, unknown>];
        } catch {
          return [];
        }
      });
  }

  /** Resolves once every stage's current process is ready. */
  async allReady(timeoutMs = 90_000): Promise<void> {
    await waitFor(
      () => [...this.procs.values()].every((p) => p.alive && p.isReady),
      timeoutMs,
      'every stage ready',
    );
  }

  /** SIGKILLs the broker and starts it again on the same port and data directory. */
  async crashBroker(): Promise<void> {
    await this.broker.kill('SIGKILL');
    fs.appendFileSync(path.join(this.logDir, 'broker.log'), `${this.broker.output()}--- killed\n`);
    this.restarts.push('broker');
    this.broker = await spawnBrokerProcess({ dataDir: this.dataDir, port: this.broker.port });
  }

  /** Records produced straight to a dispatch topic (as the renderer would), keyed by domain. */
  async produceDispatch(records: EmailReadyForDispatch[]): Promise<void> {
    for (let i = 0; i < records.length; i += 500) {
      const chunk = records.slice(i, i + 500);
      const byTopic = new Map<string, EmailReadyForDispatch[]>();
      for (const r of chunk) byTopic.set(Topics.dispatch(r.priority), [...(byTopic.get(Topics.dispatch(r.priority)) ?? []), r]);
      await this.producer.sendBatch({
        acks: -1,
        topicMessages: [...byTopic].map(([topic, rs]) => ({ topic, messages: rs.map((r) => ({ key: r.domain, value: EmailReadyForDispatchContract.encode(r) })) })),
      });
    }
  }

  private decoded: EmailEvent[] = [];
  private seenPositions = new Set<string>();
  private cursor = 0;

  /** Every event read so far, once per log position (the reader may re-read after a broker restart). */
  events(type?: EventType): EmailEvent[] {
    // Decoded once, incrementally: polling this must stay cheap (the sink shares the event loop).
    for (; this.cursor < this.reader.records.length; this.cursor++) {
      const r = this.reader.records[this.cursor];
      if (r.topic !== Topics.events) continue;
      const pos = `${r.partition}:${r.message.offset}`;
      if (this.seenPositions.has(pos)) continue;
      this.seenPositions.add(pos);
      this.decoded.push(EmailEventContract.decode(r.message.value));
    }
    return type ? this.decoded.filter((e) => e.type === type) : this.decoded;
  }

  deadLetters(): DeadLetter[] {
    return this.reader.records.filter((r) => r.topic === Topics.dead).map((r) => DeadLetterContract.decode(r.message.value));
  }

  suppressions(): number {
    return this.reader.records.filter((r) => r.topic === Topics.suppressions).length;
  }

  async waitForEvents(n: number, type: EventType, timeoutMs = 30_000): Promise<EmailEvent[]> {
    return waitFor(() => (this.events(type).length >= n ? this.events(type) : undefined), timeoutMs, `${n} ${type} events (have ${this.events(type).length})`);
  }

  /** The stage's metrics (its ops server, found from its log). */
  async metrics(stage: Stage): Promise<string> {
    const line = await this.procs.get(stage)!.waitForLine((l) => typeof l.ops === 'string', 10_000, 'ops address');
    const address = String(line.ops).replace('0.0.0.0', '127.0.0.1');
    const res = await fetch(`${address}/metrics`);
    return res.text();
  }

  /** The value of the first series of `name` whose labels include all of `labels`. */
  async metric(stage: Stage, name: string, ...labels: string[]): Promise<number> {
    const text = await this.metrics(stage);
    const line = text.split('\n').find((l) => (l.startsWith(`${name}{`) || l.startsWith(`${name} `)) && labels.every((x) => l.includes(x)));
    return line ? Number(line.split(' ').at(-1)) : Number.NaN;
  }

  /** A histogram of the stage's metrics: count, mean and bucket-estimated quantiles (upper bounds), in its unit. */
  async histogram(stage: Stage, name: string, ...labels: string[]): Promise<{ count: number; mean: number; quantile(q: number): number }> {
    const lines = (await this.metrics(stage)).split('\n').filter((l) => labels.every((x) => l.includes(x)));
    const value = (l: string): number => Number(l.split(' ').at(-1));
    const count = value(lines.find((l) => l.startsWith(`${name}_count`)) ?? ' NaN');
    const sum = value(lines.find((l) => l.startsWith(`${name}_sum`)) ?? ' NaN');
    const buckets = lines
      .filter((l) => l.startsWith(`${name}_bucket`))
      .map((l) => ({ le: Number(/le="([^"]+)"/.exec(l)?.[1]), n: value(l) }))
      .sort((a, b) => a.le - b.le);
    return {
      count,
      mean: sum / count,
      quantile: (q) => buckets.find((b) => b.n >= q * count)?.le ?? Number.NaN,
    };
  }

  /** POST /v1/emails/batch; returns the accepted ids per index (undefined where not accepted). */
  async sendBatch(messages: Array<Record<string, unknown>>): Promise<Array<string | undefined>> {
    const res = await fetch(`${this.ingestUrl}/v1/emails/batch`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ messages }),
      signal: AbortSignal.timeout(20_000),
    });
    if (res.status >= 500 && res.status !== 503) return messages.map(() => undefined);
    const body = (await res.json()) as { results?: Array<{ index: number; status: number; id?: string }> };
    const out: Array<string | undefined> = messages.map(() => undefined);
    for (const r of body.results ?? []) if (r.status === 202) out[r.index] = r.id;
    return out;
  }

  /** POST /v1/emails; the accepted id. */
  async send(message: Record<string, unknown>): Promise<string> {
    const res = await fetch(`${this.ingestUrl}/v1/emails`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify(message),
    });
    const body = (await res.json()) as { id?: string };
    if (res.status !== 202 || !body.id) throw new Error(`send answered ${res.status}: ${JSON.stringify(body)}`);
    return body.id;
  }

  /** Stops everything; the stage logs are kept when `keepLogs` (say where in the test's output). */
  async close(keepLogs = false): Promise<void> {
    this.closing = true;
    await this.reader?.stop().catch(() => undefined);
    await this.producer?.disconnect().catch(() => undefined);
    await Promise.all([...this.procs.values()].map((p) => p.kill('SIGKILL')));
    await this.broker.kill('SIGKILL');
    fs.appendFileSync(path.join(this.logDir, 'broker.log'), this.broker.output());
    fs.rmSync(this.dataDir, { recursive: true, force: true });
    if (!keepLogs) fs.rmSync(this.logDir, { recursive: true, force: true });
  }
}

/** The Message-ID header of a raw message as the sink received it. */
export function messageIdOf(raw: Buffer): string | undefined {
  return /^Message-ID:\s*<([^>]+)>/im.exec(raw.subarray(0, 4096).toString('latin1'))?.[1];
}
