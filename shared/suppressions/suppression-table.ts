/**
 * The dispatcher's live copy of `email.suppressions`: the latest packed value per record key
 * (see suppression-index.ts), read from the beginning of every partition and then kept live —
 * like CompactedTable, but consuming whole batches (`eachBatch`) and decoding only the two
 * fields the check needs, so a cold start of a million entries runs at the speed the Kafka
 * client fetches them (per-message handlers cost several times that). Start-up waits until the
 * table has caught up with the log end; a throwaway group (deleted on stop) gives it every
 * partition.
 */
import { randomUUID } from 'node:crypto';
import type { Admin, Consumer, Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { REASON_RANK } from './suppression-rules.js';
import type { SuppressionReason } from '../contracts/suppression.js';
import { PackedSuppressionMap, type PackedStore } from './suppression-index.js';
import { AppliedOffsets } from '../kafka/applied-offsets.js';
import { LONE_READER } from '../kafka/client.js';

const REASON_FIELD = Buffer.from('"reason":"');
const EXPIRES_FIELD = Buffer.from('"expiresAt":"');
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * The packed value of a record (rank + 8 × expiry seconds), reading `reason` and `expiresAt`
 * straight from the bytes the contract writes; anything unusual (escapes, repeated or
 * spaced-out fields) goes through JSON.parse.
 */
export function packedOf(value: Buffer): number {
  const r = value.indexOf(REASON_FIELD);
  if (r >= 0 && value.indexOf(REASON_FIELD, r + 1) < 0 && value.indexOf(BACKSLASH) < 0) {
    const start = r + REASON_FIELD.length;
    const rank = REASON_RANK[value.toString('latin1', start, value.indexOf(QUOTE, start)) as SuppressionReason];
    if (rank !== undefined) {
      const e = value.indexOf(EXPIRES_FIELD);
      if (e < 0) return rank;
      const from = e + EXPIRES_FIELD.length;
      const ms = Date.parse(value.toString('latin1', from, value.indexOf(QUOTE, from)));
      if (!Number.isNaN(ms)) return rank + 8 * Math.max(1, Math.ceil(ms / 1000));
    }
  }
  const v = JSON.parse(value.toString('utf8')) as { reason?: string; expiresAt?: string };
  const rank = v.reason !== undefined ? REASON_RANK[v.reason as SuppressionReason] : undefined;
  if (rank === undefined) throw new TypeError('not a suppression record (no known reason)');
  const ms = typeof v.expiresAt === 'string' ? Date.parse(v.expiresAt) : Number.NaN;
  return Number.isNaN(ms) ? rank : rank + 8 * Math.max(1, Math.ceil(ms / 1000));
}

export interface SuppressionTableOptions {
  kafka: Kafka;
  topic: string;
  logger: Logger;
}

export class SuppressionTable implements PackedStore {
  private readonly map = new PackedSuppressionMap();
  private readonly consumer: Consumer;
  private readonly admin: Admin;
  private readonly progress = new AppliedOffsets();
  private readonly groupId: string;
  /** Records skipped as undecodable since start. */
  skipped = 0;

  constructor(private readonly opts: SuppressionTableOptions) {
    this.groupId = `postline-table-${opts.topic}-${randomUUID()}`;
    this.consumer = opts.kafka.consumer({ groupId: this.groupId, ...LONE_READER });
    this.admin = opts.kafka.admin();
  }

  get size(): number {
    return this.map.size;
  }

  /** Tenants and lists are few: one string each, however many entries name them. */
  private readonly names = new Map<string, string>();
  private intern(s: string): string {
    const known = this.names.get(s);
    if (known !== undefined) return known;
    this.names.set(s, s);
    return s;
  }

  get(key: string): number | undefined {
    return this.map.get(key);
  }

  lookup(tenant: string, scope: string, address: string): number | undefined {
    return this.map.lookup(tenant, scope, address);
  }

  async start(timeoutMs = 120_000): Promise<void> {
    await this.admin.connect();
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.opts.topic, fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch, heartbeat }) => {
        for (const message of batch.messages) {
          // tenant NUL list NUL address (suppressionKey), split on the bytes: the address
          // becomes a string of its own (not a slice keeping the whole key alive).
          const k = message.key;
          const i = k ? k.indexOf(0) : -1;
          const j = i > 0 ? k!.indexOf(0, i + 1) : -1;
          if (j < 0) continue;
          const tenant = this.intern(k!.toString('utf8', 0, i));
          const scope = this.intern(k!.toString('utf8', i + 1, j));
          const address = k!.toString('utf8', j + 1);
          if (message.value === null) {
            this.map.deleteParts(tenant, scope, address);
            continue;
          }
          try {
            this.map.setParts(tenant, scope, address, packedOf(message.value));
          } catch (err) {
            this.skipped++;
            this.opts.logger.warn({ topic: this.opts.topic, partition: batch.partition, offset: message.offset, err }, 'skipping undecodable suppression record');
          }
        }
        const last = batch.messages.at(-1);
        if (last) this.progress.mark(batch.partition, BigInt(last.offset));
        await heartbeat();
      },
    });
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.catchUp(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`suppression list ${this.opts.topic} did not load within ${timeoutMs} ms`)), timeoutMs);
          timer.unref();
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Resolves once every record written before this call has been applied here. */
  async catchUp(): Promise<void> {
    await this.progress.catchUp(this.admin, this.opts.topic);
  }



  /** Stops reading and deletes the throwaway group (safe after a failed or no start). */
  async stop(): Promise<void> {
    try {
      await this.consumer.disconnect();
      await this.admin.deleteGroups([this.groupId]).catch((err: unknown) => {
        this.opts.logger.warn({ topic: this.opts.topic, group: this.groupId, err }, 'could not delete the suppression table reader group');
      });
    } finally {
      await this.admin.disconnect();
    }
  }
}
