/**
 * An in-memory index of `email.dead` for the API: every replica reads the topic from the
 * beginning (a group of its own, nothing committed) and keeps, per tenant, summaries of its most
 * recent dead letters — never the message content, which stays on the topic and is read back by
 * id only to replay it. Bounded per tenant; start-up waits (briefly) until the index has caught
 * up with the log end so a fresh replica does not answer from a half-read topic.
 */
import { randomUUID } from 'node:crypto';
import type { Admin, Consumer, Kafka } from 'kafkajs';
import { LONE_READER } from '../kafka/client.js';
import type { Logger } from 'pino';
import { DeadLetterContract } from '../contracts/dead-letter.js';
import { Topics } from '../topics.js';
import { matches, summarize, type DeadLetterSummary, type LetterFilter } from './dead-letters.js';

export interface DeadLetterIndexOptions {
  kafka: Kafka;
  logger: Logger;
  /** Summaries kept per tenant, newest first (default 1000). */
  maxPerTenant?: number;
  topic?: string;
}

export class DeadLetterIndex {
  private readonly byTenant = new Map<string, DeadLetterSummary[]>();
  private readonly consumer: Consumer;
  private readonly admin: Admin;
  private readonly applied = new Map<number, bigint>();
  private readonly max: number;
  private readonly topic: string;
  private readonly groupId: string;

  constructor(private readonly opts: DeadLetterIndexOptions) {
    this.topic = opts.topic ?? Topics.dead;
    this.max = opts.maxPerTenant ?? 1000;
    this.groupId = `postline-dead-letter-index-${randomUUID()}`;
    this.consumer = opts.kafka.consumer({ groupId: this.groupId, ...LONE_READER });
    this.admin = opts.kafka.admin();
  }

  /** Starts reading; resolves once caught up with the log end (or after `timeoutMs`, with a warning). */
  async start(timeoutMs = 30_000): Promise<void> {
    await this.admin.connect();
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.topic, fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        this.add(partition, message.offset, message.value);
        this.applied.set(partition, BigInt(message.offset));
      },
    });
    const deadline = Date.now() + timeoutMs;
    while (!(await this.caughtUp())) {
      if (Date.now() > deadline) {
        this.opts.logger.warn({ topic: this.topic, timeoutMs }, 'dead-letter index still loading; lists may be incomplete for a while');
        return;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** The tenant's dead letters matching the filter, newest first. */
  list(tenant: string, filter: Omit<LetterFilter, 'tenant'> = {}, limit = 100): DeadLetterSummary[] {
    const all = this.byTenant.get(tenant) ?? [];
    return all
      .filter((s) => matches({ ...s, tenant }, filter))
      .sort((a, b) => b.failedAt.localeCompare(a.failedAt))
      .slice(0, limit);
  }

  async stop(): Promise<void> {
    await this.consumer.disconnect();
    // A throwaway group (every instance reads everything): leave none behind on the broker.
    await this.admin.deleteGroups([this.groupId]).catch(() => undefined);
    await this.admin.disconnect();
  }

  private async caughtUp(): Promise<boolean> {
    const ends = await this.admin.fetchTopicOffsets(this.topic);
    return ends.every((e) => BigInt(e.high) <= BigInt(e.low) || (this.applied.get(e.partition) ?? -1n) >= BigInt(e.high) - 1n);
  }

  private add(partition: number, offset: string, value: Buffer | null): void {
    let letter;
    try {
      letter = DeadLetterContract.decode(value);
    } catch {
      return;
    }
    if (!letter.tenant) return; // no tenant, no owner to show it to (operators use `postline dead`)
    const list = this.byTenant.get(letter.tenant) ?? [];
    list.unshift(summarize({ id: `${partition}:${offset}`, letter }));
    if (list.length > this.max) list.length = this.max;
    this.byTenant.set(letter.tenant, list);
  }
}
