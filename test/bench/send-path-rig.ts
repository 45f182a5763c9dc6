/**
 * The pipeline under test, run as in production: the embedded broker as its own process
 * (`postline broker`), each stage as its own process (`postline ingest|renderer|dispatcher`)
 * configured only through POSTLINE_* variables, the templates directory on disk, and the SMTP
 * sink process as the relay. Also the bench's own Kafka access: pre-loading a topic, and the
 * sum of a topic's high watermarks (how many records it holds).
 */
import path from 'node:path';
import { Kafka, logLevel, type Admin, type Producer } from 'kafkajs';
import { EmailRequestedContract } from '../../shared/contracts/email-requested.js';
import { ensureTopics } from '../../shared/kafka/client.js';
import { Topics, topicSpecs } from '../../shared/topics.js';
import { hashApiKey } from '../../services/ingest/api-keys.js';
import { epochMs, spawnService, type ServiceProcess } from './send-path-processes.js';
import type { ProcessSampler } from './send-path-process-sampler.js';
import type { SinkProcess } from './send-path-sink.js';
import { emailRequested, TENANT, writeTemplatesDir } from './send-path-workload.js';
import { freePort } from '../helpers/free-port.js';

export type Stage = 'ingest' | 'renderer' | 'dispatcher';

export const API_KEY = 'pl_bench_send_path_0123456789abcdef';
/** Postline's default partition count (kafka.partitions). */
export const PARTITIONS = 6;


export interface RigOptions {
  dir: string;
  sink: SinkProcess;
  sampler: ProcessSampler;
  /** Extra node flags for stage processes (e.g. --cpu-prof). */
  stageNodeArgs?: string[];
  /** Extra node flags for the broker process. */
  brokerNodeArgs?: string[];
  /** Extra POSTLINE_* settings for every stage (after the rig's own), to try a setting without touching code. */
  stageEnv?: Record<string, string>;
}

export class Rig {
  broker!: ServiceProcess;
  bootstrap = '';
  ingestUrl = '';
  private kafka!: Kafka;
  private admin!: Admin;
  private producer!: Producer;
  private env: Record<string, string> = {};
  readonly stages = new Map<Stage, ServiceProcess>();
  /** The last log lines of each stage's most recent process (kept after it stops). */
  readonly lastLines = new Map<Stage, string>();
  /** Every stage process started, in order (CPU profiles are named by pid). */
  readonly started: ServiceProcess[] = [];

  private constructor(private readonly o: RigOptions) {}

  static async start(o: RigOptions): Promise<Rig> {
    const rig = new Rig(o);
    await rig.init();
    return rig;
  }

  private async init(): Promise<void> {
    this.broker = await spawnService({
      label: 'broker',
      args: ['broker', '--port', '0', '--data-dir', path.join(this.o.dir, 'broker'), '--log-level', 'info'],
      env: {},
      nodeArgs: this.o.brokerNodeArgs,
      ready: (l) => l.msg === 'broker ready' && typeof l.bootstrap === 'string',
    });
    this.o.sampler.watch('broker', this.broker.pid);
    this.bootstrap = String(this.broker.readyLine.bootstrap);
    this.kafka = new Kafka({ clientId: 'bench-send-path', brokers: [this.bootstrap], logLevel: logLevel.ERROR, retry: { retries: 5 } });
    this.admin = this.kafka.admin();
    await this.admin.connect();
    await ensureTopics(this.admin, topicSpecs(PARTITIONS), 1);
    this.producer = this.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await this.producer.connect();
    const ingestPort = await freePort();
    this.ingestUrl = `http://127.0.0.1:${ingestPort}`;
    this.env = {
      POSTLINE_KAFKA_BROKERS: this.bootstrap,
      POSTLINE_KAFKA_CREATE_TOPICS: 'false',
      POSTLINE_KAFKA_PARTITIONS: String(PARTITIONS),
      // info is the default level, and the level at which stages say "service ready".
      POSTLINE_LOG_LEVEL: 'info',
      POSTLINE_OPS_HOST: '127.0.0.1',
      POSTLINE_OPS_PORT: '0',
      POSTLINE_OPS_SHUTDOWN_GRACE_MS: '10000',
      POSTLINE_INGEST_HOST: '127.0.0.1',
      POSTLINE_INGEST_PORT: String(ingestPort),
      POSTLINE_INGEST_API_KEYS: JSON.stringify([{ tenant: TENANT, keyHash: hashApiKey(API_KEY) }]),
      POSTLINE_RENDERER_TEMPLATES_DIR: writeTemplatesDir(this.o.dir),
      POSTLINE_DISPATCHER_RELAY_HOST: this.o.sink.host,
      POSTLINE_DISPATCHER_RELAY_PORT: String(this.o.sink.port),
      POSTLINE_DISPATCHER_RELAY_IGNORE_TLS: 'true',
      ...this.o.stageEnv,
    };
  }

  /** Starts a stage with the rig's environment plus `env` (and node flags); resolves when it is ready. */
  async startStage(stage: Stage, env: Record<string, string> = {}, nodeArgs: string[] = []): Promise<ServiceProcess> {
    if (this.stages.has(stage)) throw new Error(`${stage} is already running`);
    const proc = await spawnService({ label: stage, args: [stage], env: { ...this.env, ...env }, nodeArgs: [...(this.o.stageNodeArgs ?? []), ...nodeArgs] });
    this.o.sampler.watch(stage, proc.pid);
    this.stages.set(stage, proc);
    this.started.push(proc);
    return proc;
  }

  /** SIGTERM (the stage drains and commits), SIGKILL if it takes too long. */
  async stopStage(stage: Stage): Promise<void> {
    const proc = this.stages.get(stage);
    this.stages.delete(stage);
    await proc?.stop('SIGTERM');
    if (proc) this.lastLines.set(stage, proc.tail());
  }

  /** Creates topics of the bench's own (PARTITIONS each) that do not exist yet. */
  async createTopics(names: string[]): Promise<void> {
    const existing = new Set(await this.admin.listTopics());
    const topics = names.filter((t) => !existing.has(t)).map((topic) => ({ topic, numPartitions: PARTITIONS, replicationFactor: 1 }));
    if (topics.length > 0) await this.admin.createTopics({ waitForLeaders: true, topics });
  }

  /** Produces `n` EmailRequested records (tag `tag`) to `topic` (email.requested), acks=-1; returns when all are acked. */
  async preloadRequested(tag: string, n: number, chunk = 500, topic: string = Topics.requested): Promise<{ startAt: number; endAt: number }> {
    const startAt = epochMs();
    const acceptedAt = new Date().toISOString();
    for (let i = 0; i < n; i += chunk) {
      const messages = [];
      for (let k = i; k < Math.min(n, i + chunk); k++) {
        const req = emailRequested(tag, k, acceptedAt);
        messages.push({ key: req.messageId, value: EmailRequestedContract.encode(req) });
      }
      await this.producer.send({ topic, acks: -1, messages });
    }
    return { startAt, endAt: epochMs() };
  }

  /** Produces keyed records to `topic` in chunks, acks=-1. */
  async produce(topic: string, messages: Array<{ key: string; value: Buffer }>, chunk = 500): Promise<void> {
    for (let i = 0; i < messages.length; i += chunk) await this.producer.send({ topic, acks: -1, messages: messages.slice(i, i + chunk) });
  }

  /** Records on `topic` so far (sum of the partitions' high watermarks). */
  async recordCount(topic: string): Promise<number> {
    const offsets = await this.admin.fetchTopicOffsets(topic);
    return offsets.reduce((s, p) => s + Number(p.high), 0);
  }

  async close(): Promise<void> {
    for (const stage of [...this.stages.keys()]) await this.stopStage(stage).catch(() => undefined);
    await this.producer?.disconnect().catch(() => undefined);
    await this.admin?.disconnect().catch(() => undefined);
    await this.broker?.stop('SIGTERM');
  }
}
