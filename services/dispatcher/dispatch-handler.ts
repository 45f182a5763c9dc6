/**
 * The dispatcher's record handler: decode a dispatch record, deliver it, and make every
 * recipient's outcome durable before resolving — a `sent` or `bounced` event; for transient
 * failures a retry record on `email.retry.<tier>` plus a `deferred` event, or, past the
 * priority's maximum age, `email.dead` plus an `expired` event; for an unsendable record
 * `email.dead` plus a `failed` event. StageConsumer commits the offset only after this
 * resolves, so a crash in between re-sends rather than loses.
 *
 * Emits 'delivery' (DeliveryReport) for metrics and 'invalid' (topic) for undecodable records.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { EmailEvent } from '../../shared/contracts/email-event.js';
import { EmailReadyForDispatchContract, type EmailReadyForDispatch } from '../../shared/contracts/email-ready-for-dispatch.js';
import { DeadLetterContract } from '../../shared/contracts/dead-letter.js';
import { ValidationError } from '../../shared/errors.js';
import { deadLetterFor, type EventInput, type EventPublisher } from '../../shared/events.js';
import { planRetry, retryAfterHint, type RetryPolicy } from '../../shared/retry-policy.js';
import type { BatchingProducer } from '../../shared/kafka/batching-producer.js';
import type { StageRecord } from '../../shared/kafka/stage-consumer.js';
import { Topics } from '../../shared/topics.js';
import { deliver, type DeliveryAttempt } from './deliver.js';
import type { FleetRegistry } from './fleet-registry.js';
import { retryRecord } from './retry-record.js';
import { route, type RoutingTable } from './route.js';
import { outcomesOf, type RecipientOutcome } from './smtp-outcome.js';

export interface DispatchHandlerDeps {
  events: EventPublisher;
  producer: BatchingProducer;
  fleets: FleetRegistry;
  routing: RoutingTable;
  retryPolicy: RetryPolicy;
  logger: Logger;
  now?: () => Date;
}

/** What became of some recipients: an outcome, with `deferred` turned `expired` past the maximum age. */
export type FinalKind = RecipientOutcome['kind'] | 'expired';

/** One record's delivery, for metrics. */
export interface DeliveryReport {
  priority: string;
  route: string;
  host: string;
  latencyMs: number;
  connectionReused: boolean;
  outcomes: Array<{ kind: FinalKind; code: string; recipients: number }>;
}

function idsOf(value: Buffer | null): { messageId?: string; tenant?: string } {
  try {
    const v = JSON.parse(value?.toString('utf8') ?? '') as Record<string, unknown>;
    return {
      ...(typeof v.messageId === 'string' && v.messageId ? { messageId: v.messageId } : {}),
      ...(typeof v.tenant === 'string' && v.tenant ? { tenant: v.tenant } : {}),
    };
  } catch {
    return {};
  }
}

export class DispatchHandler extends EventEmitter {
  private readonly inFlight = new Set<Promise<void>>();
  private readonly now: () => Date;

  constructor(private readonly deps: DispatchHandlerDeps) {
    super();
    this.now = deps.now ?? (() => new Date());
  }

  /** The StageConsumer handler; resolves once every outcome of the record is durable. */
  handle = (record: StageRecord): Promise<void> => {
    const p = this.process(record).finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
    return p;
  };

  /** Resolves when no record is being handled. */
  async drain(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  private async process(record: StageRecord): Promise<void> {
    const { topic, partition, message } = record;
    let msg: EmailReadyForDispatch;
    try {
      msg = EmailReadyForDispatchContract.decode(message.value);
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      const ids = idsOf(message.value);
      this.deps.logger.warn({ ...ids, topic, partition, offset: message.offset, reason: err.message }, 'invalid dispatch record; dead-lettered');
      await this.deps.events.deadLetter(record, err.code, err.message, ids);
      this.emit('invalid', topic);
      return;
    }
    const startedAt = this.now();
    const r = route(msg, this.deps.routing);
    const log = this.deps.logger.child({ messageId: msg.messageId, tenant: msg.tenant, route: r.name, attempt: msg.attempt, topic, partition, offset: message.offset });
    const attempt = await deliver(msg, r, this.deps.fleets, (host, err, next) =>
      log.info({ host, code: err.code, reason: err.message, next }, 'SMTP try failed; trying again'),
    );
    const outcomes = outcomesOf(msg.envelope.to, attempt.result);
    const kinds = await Promise.all(outcomes.map((o) => this.record(record, msg, attempt, o, startedAt)));
    outcomes.forEach((o, i) => {
      const fields = { host: attempt.host, outcome: kinds[i], code: o.code, recipients: o.recipients.length, latencyMs: Math.round(attempt.latencyMs), reason: o.reason };
      if (kinds[i] === 'sent') log.debug(fields, 'sent');
      else if (kinds[i] === 'failed' || kinds[i] === 'expired') log.warn(fields, `${kinds[i]}; dead-lettered`);
      else log.info(fields, kinds[i]);
    });
    this.emit('delivery', {
      priority: msg.priority,
      route: r.name,
      host: attempt.host,
      latencyMs: attempt.latencyMs,
      connectionReused: attempt.connectionReused,
      outcomes: outcomes.map((o, i) => ({ kind: kinds[i], code: o.code, recipients: o.recipients.length })),
    } satisfies DeliveryReport);
  }

  /** Makes one outcome durable (event, retry record or dead letter); returns what it became. */
  private async record(record: StageRecord, msg: EmailReadyForDispatch, attempt: DeliveryAttempt, o: RecipientOutcome, startedAt: Date): Promise<FinalKind> {
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
    };
    const smtp = {
      ...(o.reply?.code !== undefined ? { code: o.reply.code } : {}),
      ...(o.reply?.enhanced ? { enhanced: o.reply.enhanced } : {}),
      ...(o.reply ? { message: o.reply.text } : {}),
      ...(attempt.host ? { host: attempt.host } : {}),
    };
    switch (o.kind) {
      case 'sent':
        await this.deps.events.publish({ ...base, type: 'sent', smtp, latencyMs: Math.round(attempt.latencyMs * 100) / 100, connectionReused: attempt.connectionReused });
        return 'sent';
      case 'bounced':
        await this.deps.events.publish({ ...base, type: 'bounced', smtp, reason: o.reason });
        return 'bounced';
      case 'deferred':
        return this.defer(record, msg, o, base, smtp, startedAt);
      case 'failed':
        await this.deps.events.deadLetter(record, o.code, o.reason, { messageId: msg.messageId, tenant: msg.tenant });
        return 'failed';
    }
  }

  /** A transient failure: a retry record in the planned tier, or past the maximum age a dead letter. */
  private async defer(record: StageRecord, msg: EmailReadyForDispatch, o: RecipientOutcome, base: EventInput, smtp: EmailEvent['smtp'], startedAt: Date): Promise<FinalKind> {
    const now = this.now();
    const reason = `${o.code}: ${o.reason}`;
    const plan = planRetry(this.deps.retryPolicy, {
      attempt: msg.attempt,
      priority: msg.priority,
      acceptedAt: Date.parse(msg.acceptedAt),
      now: now.getTime(),
      retryAfterMs: retryAfterHint(o.reason),
    });
    if (plan.action === 'expire') {
      // Out of time: parked with its reason (replayable), and `expired` is not a bounce.
      const letter = deadLetterFor(record, this.deps.events.stage, 'EXPIRED', `${plan.reason}; last: ${reason}`, { messageId: msg.messageId, tenant: msg.tenant });
      await Promise.all([
        this.deps.producer.send(Topics.dead, { key: msg.messageId, value: DeadLetterContract.encode(letter) }),
        this.deps.events.publish({ ...base, type: 'expired', smtp, reason: `${plan.reason}; last: ${reason}` }),
      ]);
      return 'expired';
    }
    const notBefore = new Date(plan.notBefore);
    const retry = retryRecord(msg, { recipients: o.recipients, reason, attemptStartedAt: startedAt, notBefore });
    await Promise.all([
      this.deps.producer.send(Topics.retry(plan.tier), { key: record.message.key, value: EmailReadyForDispatchContract.encode(retry), headers: record.message.headers }),
      this.deps.events.publish({ ...base, type: 'deferred', smtp, reason, nextAttemptAt: notBefore.toISOString() }),
    ]);
    return 'deferred';
  }
}
