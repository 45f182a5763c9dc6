/**
 * Publishing lifecycle events and dead letters. Every stage records what it did on
 * `email.events` (keyed by message id) and parks what it cannot process on `email.dead` with
 * the reason, then goes on with the stream.
 */
import { createHash, randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { IHeaders } from 'kafkajs';
import { Topics } from './topics.js';
import { EMAIL_EVENT_VERSION, EmailEventContract, type EmailEvent } from './contracts/email-event.js';
import { DEAD_LETTER_VERSION, DeadLetterContract, type DeadLetter } from './contracts/dead-letter.js';
import type { BatchingProducer } from './kafka/batching-producer.js';
import { PermanentError } from './errors.js';
import type { StageRecord } from './kafka/stage-consumer.js';

/** A dead letter the broker refuses as too large keeps this much of the record's value. */
export const DEAD_LETTER_KEEP_BYTES = 64 * 1024;

/**
 * An event as a stage describes it. `eventId` is normally left out (a random UUID); news that a
 * sender may deliver again (a provider's webhook retried after a late answer) passes
 * `stableEventId(...)` of the sender's own id, so the repeat carries the same id and readers
 * that key by it (webhook receivers: `webhook-id`) see one event.
 */
export type EventInput = Omit<EmailEvent, 'schemaVersion' | 'eventId' | 'at' | 'stage'> & { at?: string; eventId?: string };

/** A UUID-shaped id derived from `parts` (SHA-256, version 8 bits set): the same parts, the same id. */
export function stableEventId(...parts: string[]): string {
  const h = createHash('sha256').update(parts.join('\u0000')).digest();
  h[6] = (h[6] & 0x0f) | 0x80;
  h[8] = (h[8] & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

/**
 * Emits 'published' (stage, type), 'deadLetter' (stage, code) and, from the dispatcher,
 * 'retryScheduled' (stage, tier, priority) for metrics.
 */
export class EventPublisher extends EventEmitter {
  constructor(
    private readonly producer: BatchingProducer,
    readonly stage: string,
  ) {
    super();
  }

  build(input: EventInput): EmailEvent {
    const { eventId, at, ...rest } = input;
    return { schemaVersion: EMAIL_EVENT_VERSION, eventId: eventId ?? randomUUID(), at: at ?? new Date().toISOString(), stage: this.stage, ...rest };
  }

  /** Resolves once the event is durably on `email.events`. */
  async publish(input: EventInput, headers?: IHeaders): Promise<EmailEvent> {
    const event = this.build(input);
    await this.producer.send(Topics.events, { key: event.messageId, value: EmailEventContract.encode(event), headers });
    this.emit('published', this.stage, event.type);
    return event;
  }

  /**
   * Parks a record on `email.dead` with its reason and emits a `failed` event when the
   * message (and tenant) are known. Both are durable when this resolves.
   */
  async deadLetter(record: StageRecord, code: string, reason: string, ids: { messageId?: string; tenant?: string } = {}): Promise<void> {
    const sends: Array<Promise<unknown>> = [this.sendLetter(record, code, reason, ids)];
    if (ids.messageId && ids.tenant) {
      sends.push(this.publish({ type: 'failed', messageId: ids.messageId, tenant: ids.tenant, reason: `${code}: ${reason}` }));
    }
    await Promise.all(sends);
    this.emit('deadLetter', this.stage, code);
  }

  /** The dead letter itself; when `email.dead` refuses it (a record too large for any topic), it keeps the value's head. */
  private async sendLetter(record: StageRecord, code: string, reason: string, ids: { messageId?: string; tenant?: string }): Promise<void> {
    const send = (r: StageRecord, why: string) =>
      this.producer.send(Topics.dead, { key: ids.messageId ?? r.message.key ?? null, value: DeadLetterContract.encode(deadLetterFor(r, this.stage, code, why, ids)) });
    try {
      await send(record, reason);
    } catch (err) {
      const value = record.message.value;
      if (!(err instanceof PermanentError) || !value || value.length <= DEAD_LETTER_KEEP_BYTES) throw err;
      const kept = { ...record, message: { ...record.message, value: value.subarray(0, DEAD_LETTER_KEEP_BYTES) } };
      await send(kept, `${reason} (value truncated to its first ${DEAD_LETTER_KEEP_BYTES} of ${value.length} bytes: ${err.code})`);
    }
  }
}

function isUtf8(buf: Buffer): boolean {
  return Buffer.from(buf.toString('utf8'), 'utf8').equals(buf);
}

export function deadLetterFor(record: StageRecord, stage: string, code: string, reason: string, ids: { messageId?: string; tenant?: string }): DeadLetter {
  const { message } = record;
  const value = message.value;
  const utf8 = value === null || isUtf8(value);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(message.headers ?? {})) {
    if (v !== undefined) headers[k] = Array.isArray(v) ? v.map(String).join(',') : String(v);
  }
  return {
    schemaVersion: DEAD_LETTER_VERSION,
    ...(ids.messageId ? { messageId: ids.messageId } : {}),
    ...(ids.tenant ? { tenant: ids.tenant } : {}),
    code,
    reason,
    stage,
    failedAt: new Date().toISOString(),
    source: {
      topic: record.topic,
      partition: record.partition,
      offset: message.offset,
      key: message.key ? message.key.toString('utf8') : null,
      value: value === null ? null : value.toString(utf8 ? 'utf8' : 'base64'),
      valueEncoding: utf8 ? 'utf8' : 'base64',
      headers,
    },
  };
}
