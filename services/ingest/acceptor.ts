/**
 * Accepting an email: normalize the request into an `EmailRequested`, claim its
 * Idempotency-Key when it has one, produce the record and its `accepted` event, and only then
 * answer. The record and the event are sent together — one linger batch, one broker round
 * trip — and the answer waits for both acks, so a 202 always means the message is durably on
 * `email.requested` and its `accepted` event durably on `email.events`. The claim is marked
 * accepted only after that: a mark must never exist for a message that was not produced.
 *
 * Emits 'accepted' (priority, scheduled), 'replayed' (), 'rejected' (code), 'late-ack' () and
 * 'slice' (gaveWay: a batch slice after the first took a shared turn, see acceptBatch) for metrics.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { messageIds } from '../../shared/message-ids.js';
import { Topics } from '../../shared/topics.js';
import { EmailRequestedContract, type EmailRequested } from '../../shared/contracts/email-requested.js';
import type { BatchingProducer } from '../../shared/kafka/batching-producer.js';
import type { EventPublisher } from '../../shared/events.js';
import type { EmailBody } from './email-body-schema.js';
import type { Priority } from '../../shared/config.js';
import { urgentMail, type UrgentMail } from '../../shared/urgent-mail.js';
import { checkBatchItemShape, normalizeEmail, type Normalized, type NormalizeLimits } from './normalize-email.js';
import { requestFingerprint, type IdempotencyClaim } from './idempotency-claims.js';
import type { IdempotencyStore } from './idempotency-store.js';
import { RequestRejected, Unavailable, toHttpError, type ErrorBody } from '../../shared/http/errors.js';
import { hasControlChars } from './addresses.js';
import { ANY_SENDER_DOMAIN, senderDomainProblem, type SenderDomainPolicy } from './sender-domains.js';

export interface AcceptorDeps {
  producer: BatchingProducer;
  events: EventPublisher;
  idempotency: IdempotencyStore;
  limits: NormalizeLimits;
  /** Longest a request waits for the broker (claim, produce and mark together) before 503. */
  produceTimeoutMs: number;
  logger: Logger;
  /** Which From domains each tenant may use (default: any). */
  senderDomains?: SenderDomainPolicy;
  newId?: () => string;
  now?: () => Date;
  /** Where urgent mail is reported and looked up (default: the process's, shared/urgent-mail.ts). */
  urgent?: UrgentMail;
}

export interface Accepted {
  id: string;
  /** True when an Idempotency-Key matched an earlier request and nothing was sent. */
  replayed: boolean;
}

export interface BatchItemResult {
  index: number;
  status: number;
  id?: string;
  error?: ErrorBody['error'];
}

/**
 * Batch items normalized in one turn of the event loop (see acceptBatch): ~50 × 0.1 ms, a few ms
 * of the loop at a time instead of ~50–100 ms for a 500-message batch.
 */
export const BATCH_SLICE = 50;

/**
 * How long after a message comes in the batches of a lower priority give way to it (see
 * acceptBatch): about the time it takes through the rest of a busy process (render, dispatch).
 */
export const GIVE_WAY_MS = 3000;

/** The most urgent priority among raw batch items (unknown or absent: the default, transactional). */
function mostUrgent(items: unknown[]): Priority {
  let best: Priority = 'bulk';
  for (const item of items) {
    const p = (item as { priority?: unknown } | null)?.priority;
    if (p === 'critical') return p;
    if (p !== 'bulk') best = 'transactional';
  }
  return best;
}

/** One batch slice per turn of the event loop across every batch that asks, in the order they asked. */
export class SliceTurns {
  private readonly waiting: Array<() => void> = [];
  private scheduled = false;

  /** Resolves in a later turn of the event loop, once the slices that asked before have had theirs. */
  next(): Promise<void> {
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(this.turn);
      }
    });
  }

  private readonly turn = (): void => {
    this.waiting.shift()?.();
    // Set from a setImmediate callback, the next one runs in the next turn, after the I/O between.
    if (this.waiting.length > 0) setImmediate(this.turn);
    else this.scheduled = false;
  };
}

/** Longest Idempotency-Key header; batch items derive `<key>#<index>` within the contract's 255. */
export const MAX_IDEMPOTENCY_KEY = 200;

export class Acceptor extends EventEmitter {
  private readonly newId: () => string;
  private readonly now: () => Date;
  private readonly urgent: UrgentMail;
  private readonly turns = new SliceTurns();

  constructor(private readonly deps: AcceptorDeps) {
    super();
    this.newId = deps.newId ?? messageIds();
    this.now = deps.now ?? (() => new Date());
    this.urgent = deps.urgent ?? urgentMail;
  }

  /**
   * Normalizes and encodes a sample message and drops it (nothing is produced or counted): the
   * first request after a start then finds that code loaded and compiled, as later ones do.
   */
  warmUp(): void {
    normalizeEmail(
      { from: 'Warm-up Ä <warm-up@example.com>', to: ['warm-up@example.com'], subject: 'Warm-up ä', text: 'warm-up', html: '<p>warm-up</p>' },
      { tenant: 'warm-up', messageId: this.newId(), acceptedAt: this.now().toISOString() },
      this.deps.limits,
    );
  }

  /** Accepts one message; throws RequestRejected (4xx) or Unavailable (503). */
  accept(tenant: string, body: EmailBody, idempotencyKey?: string): Promise<Accepted> {
    return this.counted(this.acceptOne(tenant, body, idempotencyKey));
  }

  /**
   * Accepts each item on its own: an invalid item gets its errors, the others their ids. Items
   * are normalized BATCH_SLICE at a time, each slice in its own turn of the event loop, so a
   * large batch never holds the loop for long: where the ingest shares its process with other
   * stages (npm start), the renderer and the dispatcher keep moving while a campaign is accepted.
   * Batches in flight together each take a slice per turn; but within GIVE_WAY_MS of a message
   * more urgent than all of a slice's items coming in to this process (shared/urgent-mail.ts: a
   * critical one during a transactional campaign, a transactional one during a bulk one, through
   * this API or the SMTP gateway) they take turns, one slice per turn between them all,
   * so that message's steps through the process (its 202, render, SMTP) wait for one slice at a
   * time, not one per batch. Otherwise larger turns are kept: they batch the process's I/O better.
   * `items` is emptied (set to undefined) as its items are taken.
   */
  async acceptBatch(tenant: string, items: unknown[], batchKey?: string): Promise<BatchItemResult[]> {
    const results: Promise<BatchItemResult>[] = [];
    for (let start = 0; start < items.length; start += BATCH_SLICE) {
      const slice = items.slice(start, start + BATCH_SLICE);
      if (start > 0) {
        const giveWay = this.urgent.moreUrgentWithin(mostUrgent(slice), GIVE_WAY_MS);
        this.emit('slice', giveWay);
        await (giveWay ? this.turns.next() : nextTurn());
      }
      slice.forEach((item, i) => results.push(this.acceptItem(tenant, item, start + i, batchKey)));
      // Each item is normalized and on its way to the broker by now (acceptOne runs synchronously
      // up to its produce): its parsed JSON is garbage from here, not for as long as the batch's
      // slowest acknowledgement; so it dies young instead of being copied and promoted.
      items.fill(undefined, start, start + slice.length);
    }
    return Promise.all(results);
  }

  private acceptItem(tenant: string, item: unknown, index: number, batchKey: string | undefined): Promise<BatchItemResult> {
    let accepted: Promise<Accepted>;
    try {
      checkBatchItemShape(item);
      const { idempotencyKey, ...body } = item as EmailBody & { idempotencyKey?: string };
      if (idempotencyKey !== undefined) checkIdempotencyKey(idempotencyKey, 'idempotencyKey');
      accepted = this.acceptOne(tenant, body, idempotencyKey ?? (batchKey !== undefined ? `${batchKey}#${index}` : undefined));
    } catch (err) {
      accepted = Promise.reject(err);
    }
    return this.counted(accepted).then(
      ({ id }) => ({ index, status: 202, id }),
      (err: unknown) => {
        const { status, body } = toHttpError(err);
        return { index, status, error: body.error };
      },
    );
  }

  /** `accepted`, counting a rejection by its code. */
  private async counted(accepted: Promise<Accepted>): Promise<Accepted> {
    try {
      return await accepted;
    } catch (err) {
      this.emit('rejected', (err as { code?: string }).code ?? 'INTERNAL');
      throw err;
    }
  }

  private async acceptOne(tenant: string, body: EmailBody, key: string | undefined): Promise<Accepted> {
    const deadline = Date.now() + this.deps.produceTimeoutMs;
    const ids = { tenant, messageId: this.newId(), acceptedAt: this.now().toISOString(), idempotencyKey: key };
    const normalized = normalizeEmail(body, ids, this.deps.limits);
    if (normalized.record.sendAt === undefined) this.urgent.seen(normalized.record.priority);
    const senderProblem = senderDomainProblem(this.deps.senderDomains ?? ANY_SENDER_DOMAIN, tenant, normalized.record.from.email);
    if (senderProblem) throw new RequestRejected('VALIDATION_FAILED', 'the request is invalid', [{ field: 'from', message: senderProblem }]);
    if (key === undefined) {
      // Returned, not awaited: nothing here (the request, its record) is held until the ack.
      const id = ids.messageId;
      return this.produce(normalized, deadline).then(() => ({ id, replayed: false }));
    }
    const got = await within(this.deps.idempotency.acquire(tenant, key, requestFingerprint(normalized.record), ids), deadline, 'claiming the idempotency key');
    switch (got.kind) {
      case 'replay':
        this.emit('replayed');
        this.deps.logger.debug({ messageId: got.messageId, tenant }, 'idempotent replay');
        return { id: got.messageId, replayed: true };
      case 'conflict':
        throw new RequestRejected('IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was used with a different request', [
          { field: 'Idempotency-Key', message: 'already used with a different request body' },
        ]);
      case 'in-progress':
        throw new RequestRejected('IDEMPOTENCY_IN_PROGRESS', 'a request with this Idempotency-Key is in progress; retry later', [], Math.ceil(got.retryAfterMs / 1000));
    }
    // Completing a claim left pending by a failed request reproduces that request's record.
    const record = got.completing ? { ...normalized.record, messageId: got.claim.messageId, acceptedAt: got.claim.acceptedAt } : normalized.record;
    const toSend = got.completing ? { record, value: EmailRequestedContract.encode(record) } : normalized;
    if (got.completing) this.deps.logger.info({ messageId: record.messageId, tenant }, 'completing an idempotency claim left pending');
    await this.produce(toSend, deadline, () => this.mark(tenant, key, got.claim));
    await this.mark(tenant, key, got.claim);
    return { id: record.messageId, replayed: false };
  }

  /**
   * Produces the record and its accepted event; resolves once both are acked. When the
   * deadline passes first the caller gets Unavailable, but a late ack still runs `onLateAck`
   * so an idempotency claim does not stay pending for a message that was in fact queued.
   */
  private produce({ record, value }: Normalized, deadline: number, onLateAck?: () => Promise<void>): Promise<void> {
    const { producer, events } = this.deps;
    const ids = {
      messageId: record.messageId,
      tenant: record.tenant,
      priority: record.priority,
      recipients: recipientsOf(record),
      ...(record.pool !== undefined ? { pool: record.pool } : {}),
      ...(record.tags ? { tags: record.tags } : {}),
    };
    // A scheduled message waits on email.scheduled (the scheduler releases it at sendAt) with a `scheduled` event.
    const topic = record.sendAt ? Topics.scheduled : Topics.requestedFor(record.priority);
    const durable = Promise.all([
      producer.send(topic, { key: record.messageId, value }),
      events.publish({ type: 'accepted', ...ids }),
      ...(record.sendAt ? [events.publish({ type: 'scheduled', ...ids, nextAttemptAt: record.sendAt })] : []),
    ]);
    return this.acknowledged(durable, { messageId: record.messageId, tenant: record.tenant, priority: record.priority, sendAt: record.sendAt, topic }, deadline, onLateAck);
  }

  /**
   * Waits for a message's record and events to be acked. Given only what it logs, not the
   * record: a batch's records (their parsed request) are then garbage while their acks are
   * awaited, and die young rather than being copied by every scavenge until then.
   */
  private async acknowledged(
    durable: Promise<unknown>,
    m: { messageId: string; tenant: string; priority: Priority; sendAt: string | undefined; topic: string },
    deadline: number,
    onLateAck?: () => Promise<void>,
  ): Promise<void> {
    const { logger } = this.deps;
    try {
      await within(durable, deadline, 'producing to email.requested');
    } catch (err) {
      logger.warn({ messageId: m.messageId, tenant: m.tenant, topic: m.topic, err }, 'not acknowledged; answering 503');
      durable.then(
        async () => {
          logger.warn({ messageId: m.messageId, tenant: m.tenant }, 'acknowledged after the request was answered 503');
          this.emit('late-ack');
          await onLateAck?.();
        },
        () => undefined,
      );
      throw err instanceof Unavailable ? err : new Unavailable('the message could not be queued; retry', err);
    }
    this.emit('accepted', m.priority, m.sendAt !== undefined);
    logger.debug({ messageId: m.messageId, tenant: m.tenant, priority: m.priority, ...(m.sendAt ? { sendAt: m.sendAt } : {}) }, m.sendAt ? 'accepted, scheduled' : 'accepted');
  }

  private async mark(tenant: string, key: string, claim: IdempotencyClaim): Promise<void> {
    try {
      await this.deps.idempotency.markAccepted(tenant, key, claim);
    } catch (err) {
      // The message is queued, so the answer stays 202; an unmarked claim is completed (and the
      // message possibly produced again, same id) only by a retry after its lease.
      this.deps.logger.error({ messageId: claim.messageId, tenant, err }, 'could not mark the idempotency claim accepted');
    }
  }
}

/** Throws RequestRejected when an Idempotency-Key is unusable. */
export function checkIdempotencyKey(key: string, field = 'Idempotency-Key'): void {
  if (key.length === 0 || key.length > MAX_IDEMPOTENCY_KEY || hasControlChars(key)) {
    throw new RequestRejected('VALIDATION_FAILED', 'the request is invalid', [
      { field, message: `must be 1-${MAX_IDEMPOTENCY_KEY} characters without CR, LF or NUL` },
    ]);
  }
}

function recipientsOf(r: EmailRequested): string[] {
  return [...r.to, ...(r.cc ?? []), ...(r.bcc ?? [])].map((a) => a.email);
}

/** Resolves like `p`, or rejects with Unavailable once `deadline` (epoch ms) passes. */
function within<T>(p: Promise<T>, deadline: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Unavailable(`the broker did not answer in time (${what})`)), Math.max(0, deadline - Date.now()));
  });
  return Promise.race([p, expired]).finally(() => clearTimeout(timer));
}
