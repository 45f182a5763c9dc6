/**
 * Makes one recipient outcome of a delivery attempt durable, in an order that lets a crash at
 * any point be repaired by doing the rest again:
 *
 * - `sent`, `bounced`: the event;
 * - `deferred`: the retry record on `email.retry.<priority>.<tier>`, *then* the `deferred` event — so a
 *   durable event always means the retry record is durable too (what the delivery ledger and
 *   its start-up read of `email.events` rely on);
 * - past the maximum age, `expired`: the dead letter, then the event;
 * - `failed` (the record can never be sent): the dead letter, then the event.
 *
 * What is done is noted on the `PendingOutcome` itself, so a second call after a failure skips
 * the writes that were acked. Outcome events get a deterministic `eventId` (from message,
 * domain, attempt, type and recipients): a re-published outcome is recognisably the same event.
 */
import { parse as uuidParse, v5 as uuidv5 } from 'uuid';
import type { EmailEvent } from '../../shared/contracts/email-event.js';
import { EmailEventContract } from '../../shared/contracts/email-event.js';
import { EmailReadyForDispatchContract, type EmailReadyForDispatch } from '../../shared/contracts/email-ready-for-dispatch.js';
import { DeadLetterContract } from '../../shared/contracts/dead-letter.js';
import { deadLetterFor, type EventInput, type EventPublisher } from '../../shared/events.js';
import { planRetry, retryAfterHint, type RetryPolicy } from '../../shared/retry-policy.js';
import type { BatchingProducer } from '../../shared/kafka/batching-producer.js';
import type { Priority } from '../../shared/config.js';
import type { StageRecord } from '../../shared/kafka/stage-consumer.js';
import { Topics, type RetryTier } from '../../shared/topics.js';
import { retryRecord } from './retry-record.js';
import { SHAPING_DEFERRED } from './shaping/shaping-deferral.js';
import type { RecipientOutcome } from './smtp-outcome.js';

/** What became of some recipients: an outcome, with `deferred` turned `expired` past the maximum age. */
export type FinalKind = RecipientOutcome['kind'] | 'expired';

/** One outcome of one attempt, and how much of it is durable. */
export interface PendingOutcome {
  outcome: RecipientOutcome;
  /** The host that answered (or was last tried). */
  host: string;
  latencyMs: number;
  connectionReused: boolean;
  attemptStartedAt: Date;
  /** When the server's verdict arrived (performance.now()): the start of the duplicate window. */
  verdictAt: number;
  /** For `deferred`: retry or expire, decided once (a repeat writes the same plan). */
  plan?: { action: 'retry'; tier: RetryTier; notBefore: number } | { action: 'expire'; reason: string };
  /** When the plan was made: the time of the `deferred` / `expired` event. */
  plannedAt?: Date;
  written: { record: boolean; event: boolean };
  /** mx routes: the TLS protocol of the session, the source address and the site. */
  delivery?: { tls?: string; source?: string; site?: string };
}

export interface OutcomeWriterDeps {
  events: EventPublisher;
  producer: BatchingProducer;
  /**
   * A producer of its own for some priorities (critical): kafkajs sends one request at a time
   * per idempotent producer, so critical outcomes would otherwise queue behind bulk's batches.
   */
  producerFor?: (priority: Priority) => BatchingProducer | undefined;
  retryPolicy: RetryPolicy;
  now?: () => Date;
}

/** Namespace of the dispatcher's deterministic outcome event ids (uuid v5). */
const EVENT_NAMESPACE = uuidParse('6f1c3a5e-2d0b-4f7e-9a53-8b1d2c4e7f90');

export function outcomeEventId(msg: Pick<EmailReadyForDispatch, 'messageId' | 'domain' | 'attempt'>, type: string, recipients: string[]): string {
  // The same id as for the name as a string; handing uuid the UTF-8 bytes skips its slow
  // per-character string conversion (half the cost of an id).
  return uuidv5(Buffer.from(`${msg.messageId}|${msg.domain}|${msg.attempt}|${type}|${[...recipients].sort().join(',')}`, 'utf8'), EVENT_NAMESPACE);
}

export class OutcomeWriter {
  private readonly now: () => Date;

  constructor(private readonly deps: OutcomeWriterDeps) {
    this.now = deps.now ?? (() => new Date());
  }

  private producer(msg: EmailReadyForDispatch): BatchingProducer {
    return this.deps.producerFor?.(msg.priority) ?? this.deps.producer;
  }

  /** Writes what is not yet durable of `p`; resolves with what the recipients became. */
  async write(record: StageRecord, msg: EmailReadyForDispatch, p: PendingOutcome): Promise<FinalKind> {
    const o = p.outcome;
    const smtp = {
      ...(o.reply?.code !== undefined ? { code: o.reply.code } : {}),
      ...(o.reply?.enhanced ? { enhanced: o.reply.enhanced } : {}),
      ...(o.reply ? { message: o.reply.text } : {}),
      ...(p.host ? { host: p.host } : {}),
    };
    const base: EventInput = {
      type: 'sent',
      messageId: msg.messageId,
      tenant: msg.tenant,
      priority: msg.priority,
      domain: msg.domain,
      recipients: o.recipients,
      acceptedAt: msg.acceptedAt,
      attempt: msg.attempt,
      ...(msg.pool ? { pool: msg.pool } : {}),
      ...(msg.tags ? { tags: msg.tags } : {}),
      ...(p.delivery?.source ? { source: p.delivery.source } : {}),
      ...(p.delivery?.site ? { site: p.delivery.site } : {}),
      ...(msg.fromDomain ? { fromDomain: msg.fromDomain } : {}),
      ...(msg.listId ? { listId: msg.listId } : {}),
    };
    const tls = p.delivery?.tls ? { tls: p.delivery.tls } : {};
    switch (o.kind) {
      case 'sent':
        await this.event(msg, p, { ...base, type: 'sent', smtp, ...tls, latencyMs: Math.round(p.latencyMs * 100) / 100, connectionReused: p.connectionReused });
        return 'sent';
      case 'bounced':
        await this.event(msg, p, { ...base, type: 'bounced', smtp, reason: o.reason, ...(o.category ? { category: o.category } : {}) });
        return 'bounced';
      case 'failed':
        await this.deadLetter(record, msg, p, o.code, o.reason);
        await this.event(msg, p, { ...base, type: 'failed', reason: `${o.code}: ${o.reason}` });
        return 'failed';
      case 'deferred':
        return this.defer(record, msg, p, base, smtp);
    }
  }

  /** A transient failure: a retry record in the planned tier, or past the maximum age a dead letter. */
  private async defer(record: StageRecord, msg: EmailReadyForDispatch, p: PendingOutcome, base: EventInput, smtp: EmailEvent['smtp']): Promise<FinalKind> {
    const o = p.outcome;
    const reason = `${o.code}: ${o.reason}`;
    p.plannedAt ??= this.now();
    const now = p.plannedAt.getTime();
    p.plan ??= planRetry(this.deps.retryPolicy, {
      // Not sent for lack of a send token (shaping): the shortest tier, whatever the attempt.
      attempt: o.code === SHAPING_DEFERRED ? 1 : msg.attempt,
      priority: msg.priority,
      // A replayed dead letter gets a fresh time budget from its replay.
      acceptedAt: Date.parse(msg.replayedAt ?? msg.acceptedAt),
      now,
      retryAfterMs: retryAfterHint(o.reason),
    });
    const plan = p.plan;
    if (plan.action === 'expire') {
      // Out of time: parked with its reason (replayable); `expired` is not a bounce.
      const why = `${plan.reason}; last: ${reason}`;
      await this.deadLetter(record, msg, p, 'EXPIRED', why);
      await this.event(msg, p, { ...base, at: p.plannedAt.toISOString(), type: 'expired', smtp, reason: why });
      return 'expired';
    }
    const notBefore = new Date(plan.notBefore);
    if (!p.written.record) {
      const retry = retryRecord(msg, { recipients: o.recipients, reason, attemptStartedAt: p.attemptStartedAt, notBefore });
      await this.producer(msg).send(Topics.retryFor(msg.priority, plan.tier), { key: record.message.key, value: EmailReadyForDispatchContract.encode(retry), headers: record.message.headers });
      p.written.record = true;
      this.deps.events.emit('retryScheduled', this.deps.events.stage, plan.tier, msg.priority);
    }
    await this.event(msg, p, { ...base, at: p.plannedAt.toISOString(), type: 'deferred', smtp, reason, nextAttemptAt: notBefore.toISOString() });
    return 'deferred';
  }

  private async deadLetter(record: StageRecord, msg: EmailReadyForDispatch, p: PendingOutcome, code: string, reason: string): Promise<void> {
    if (p.written.record) return;
    // Only this outcome's recipients: the others of the record ended elsewhere.
    const value = EmailReadyForDispatchContract.encode({ ...msg, envelope: { from: msg.envelope.from, to: p.outcome.recipients } });
    const source: StageRecord = { ...record, message: { ...record.message, value } };
    const letter = deadLetterFor(source, this.deps.events.stage, code, reason, { messageId: msg.messageId, tenant: msg.tenant });
    await this.producer(msg).send(Topics.dead, { key: msg.messageId, value: DeadLetterContract.encode(letter) });
    p.written.record = true;
    this.deps.events.emit('deadLetter', this.deps.events.stage, code);
  }

  private async event(msg: EmailReadyForDispatch, p: PendingOutcome, input: EventInput): Promise<void> {
    if (p.written.event) return;
    const event: EmailEvent = { ...this.deps.events.build(input), eventId: outcomeEventId(msg, input.type, input.recipients ?? []) };
    await this.producer(msg).send(Topics.events, { key: event.messageId, value: EmailEventContract.encode(event) });
    p.written.event = true;
    this.deps.events.emit('published', this.deps.events.stage, input.type);
  }
}
