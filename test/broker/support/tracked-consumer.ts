/**
 * Group consumers that record who processed what: each processed record is logged with the
 * member id and the generation whose assignment the member was acting on. kafkajs only reports
 * the generation in its debug log of the assignment it received, so each consumer gets its own
 * client with a log hook. Also runs a consumer in a child process for crash tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel, type Consumer, type ConsumerConfig, type LogEntry } from 'kafkajs';
import { uniqueName, waitFor } from '../../helpers/broker.js';

export interface Processed {
  member: string;
  memberId: string;
  generation: number;
  partition: number;
  offset: number;
}

export interface Assignment {
  memberId: string;
  generation: number;
  partitions: number[];
}

export interface TrackedConsumer {
  name: string;
  consumer: Consumer;
  /** Assignments this member received, in order. */
  assignments: Assignment[];
  current(): Assignment | undefined;
  stop(): Promise<void>;
}

export async function trackedConsumer(opts: {
  bootstrap: string;
  groupId: string;
  topic: string;
  name: string;
  log: Processed[];
  config?: Partial<ConsumerConfig>;
  /** Called for each record before it is logged (e.g. to slow processing down). */
  onMessage?: () => Promise<void>;
}): Promise<TrackedConsumer> {
  let generation = -1;
  const kafka = new Kafka({
    brokers: [opts.bootstrap],
    clientId: uniqueName(opts.name),
    logLevel: logLevel.DEBUG,
    retry: { retries: 8, initialRetryTime: 50, maxRetryTime: 1000 },
    logCreator: () => (entry: LogEntry) => {
      if (entry.log.message === 'Received assignment') generation = Number(entry.log.generationId);
    },
  });
  const consumer = kafka.consumer({ groupId: opts.groupId, maxWaitTimeInMs: 100, sessionTimeout: 6000, heartbeatInterval: 300, rebalanceTimeout: 10_000, ...opts.config });
  const assignments: Assignment[] = [];
  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    assignments.push({ memberId: e.payload.memberId, generation, partitions: [...(e.payload.memberAssignment[opts.topic] ?? [])].sort((a, b) => a - b) });
  });
  let memberId = '';
  consumer.on(consumer.events.GROUP_JOIN, (e) => (memberId = e.payload.memberId));
  await consumer.connect();
  await consumer.subscribe({ topic: opts.topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      await opts.onMessage?.();
      opts.log.push({ member: opts.name, memberId, generation, partition, offset: Number(message.offset) });
    },
  });
  let stopped = false;
  return {
    name: opts.name,
    consumer,
    assignments,
    current: () => assignments.at(-1),
    async stop() {
      if (stopped) return;
      stopped = true;
      await consumer.disconnect();
    },
  };
}

export interface ConsumerProcess {
  events: Array<{ event: string; memberId?: string; generation?: number; assignment?: Record<string, number[]>; partition?: number; offset?: number }>;
  kill(signal: NodeJS.Signals): Promise<void>;
  output(): string;
}

/** Runs `consumer-process.ts` in a child process; resolves once it has joined the group. */
export async function spawnConsumerProcess(bootstrap: string, topic: string, groupId: string, sessionTimeoutMs: number): Promise<ConsumerProcess> {
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'consumer-process.ts');
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', script, bootstrap, topic, groupId, String(sessionTimeoutMs)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const events: ConsumerProcess['events'] = [];
  let out = '';
  let pending = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    out += d;
    pending += d;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const l of lines) if (l.trim()) events.push(JSON.parse(l));
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  await waitFor(() => events.some((e) => e.event === 'joined') || child.exitCode !== null, 30_000, 'the consumer process to join');
  if (child.exitCode !== null) throw new Error(`consumer process exited early:\n${out}`);
  return {
    events,
    output: () => out,
    async kill(signal) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}
