/**
 * The dispatcher's record handler: decode a dispatch record, skip the recipients a previous
 * delivery of the very same attempt already settled (the delivery ledger), deliver to the rest,
 * and make every recipient's outcome durable before resolving (`outcome-writer.ts`: an event; a
 * retry record or a dead letter first where there is one). StageConsumer commits the offset only
 * after this resolves, so a crash in between repeats rather than loses — and the ledger turns
 * the repeat into a no-op instead of a second delivery.
 *
 * Emits 'delivery' (DeliveryReport) for metrics, 'invalid' (topic) for undecodable records,
 * 'duplicate' (priority, recipients) for recipients skipped as already handled, 'suppressed'
 * (priority, reason, recipients) for recipients the suppression list held back, 'rekey'
 * (priority, site) for mx-route records produced again under their site key, and 'verdict'
 * (topic, partition, offset, verdictAt, durableAt) for each sent outcome (the duplicate window).
 */
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { EmailReadyForDispatchContract, type EmailReadyForDispatch } from '../../shared/contracts/email-ready-for-dispatch.js';
import { ValidationError } from '../../shared/errors.js';
import { lazyChild } from '../../shared/logger.js';
import { Semaphore } from '../../shared/semaphore.js';
import { CriticalActivity } from '../../shared/critical-activity.js';
import type { Priority } from '../../shared/config.js';
import type { EventPublisher } from '../../shared/events.js';
import type { RetryPolicy } from '../../shared/retry-policy.js';
import type { BatchingProducer } from '../../shared/kafka/batching-producer.js';
import type { StageRecord } from '../../shared/kafka/stage-consumer.js';
import { deliver } from './deliver.js';
import { DeliveryLedger, splitRecipients } from './delivery-ledger.js';
import type { FleetRegistry } from './fleet-registry.js';
import { OutcomeWriter, outcomeEventId, type FinalKind, type OutcomeWriterDeps, type PendingOutcome } from './outcome-writer.js';
import { route, type Route, type RoutingTable } from './route.js';
import { outcomesOf, parseSmtpReply, refusalVerdict, type RecipientOutcome } from './smtp-outcome.js';
import type { Routed, RouteRefusal } from './routing/mx-router.js';
import { isRecipientClassBounce } from './shaping/auto-pause.js';
import { ShapingDeferral, type Shaper, type ShapingKey } from './shaping/shaper.js';
import type { ShapingRules } from './shaping/shaping-rules.js';
import { siteKeyVerdict } from './shaping/site-shards.js';
import { EmailEventContract } from '../../shared/contracts/email-event.js';
import { Topics } from '../../shared/topics.js';
import { splitSuppressed, suppressedEventInput, type SuppressionCheck } from '../suppressions/enforcement.js';

export type { FinalKind } from './outcome-writer.js';

export interface DispatchHandlerDeps {
  events: EventPublisher;
  producer: BatchingProducer;
  /** A producer of its own for a priority (see OutcomeWriterDeps). */
  producerFor?: OutcomeWriterDeps['producerFor'];
  fleets: FleetRegistry;
  routing: RoutingTable;
  /** Routes records with a routing file (pools, MX); without it every record takes `routing.relay`. */
  router?: { route(msg: EmailReadyForDispatch): Promise<Routed> };
  /** Admission, limits and feedback per (source address, site) for mx routes. */
  shaper?: Shaper;
  /**
   * The shaping rules the renderer keys mx-route records by (site or `site#k` shard, see
   * shaping/site-shards.ts). With them, an mx-route record is sent only under its own key's
   * share of the site's limits; a record keyed otherwise is produced again under its site key.
   */
  shapingRules?: ShapingRules;
  retryPolicy: RetryPolicy;
  logger: Logger;
  /** Recently handled deliveries (default: none remembered). */
  ledger?: DeliveryLedger<PendingOutcome>;
  /** Longest a bulk record waits for critical records in flight to finish (0: bulk never waits). */
  bulkYieldMs?: number;
  /**
   * SMTP transactions at once per priority (default: unbounded). A record holds its slot only
   * while it is being sent, not while its outcome is written, so a consumer can keep more
   * records in flight than it sends at once (see dispatcher/main.ts).
   */
  sendSlots?: Partial<Record<Priority, number>>;
  /** The suppression list: recipients it holds get a `suppressed` event and no SMTP (absent: not checked). */
  suppressions?: SuppressionCheck;
  now?: () => Date;
}

/** One record's delivery, for metrics. */
export interface DeliveryReport {
  priority: string;
  route: string;
  site?: string;
  source?: string;
  host: string;
  latencyMs: number;
  connectionReused: boolean;
  /** Left through a fallback host of the route. */
  fallback: boolean;
  outcomes: Array<{ kind: FinalKind; code: string; recipients: number }>;
}

/**
 * A route shaped under a shard of its site (`gmail#2`): admission, limits, feedback and the
 * connection budget use the shard's key; fleets are the shard's own (a shard's fleet draws on
 * the shard's budget). `site` stays the site (metrics, events).
 */
function shardRoute(r: Route, shapingSite: string): Route {
  return {
    ...r,
    hosts: r.hosts.map((h) => (h.shaping ? { ...h, key: `${h.key} shard=${shapingSite}`, shaping: { ...h.shaping, site: shapingSite } } : h)),
  };
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
  /** Records being handled by (message, attempt, domain): a concurrent repeat waits for the first. */
  private readonly active = new Map<string, Promise<void>>();
  private readonly now: () => Date;
  private readonly writer: OutcomeWriter;
  readonly ledger: DeliveryLedger<PendingOutcome>;
  private readonly critical: CriticalActivity;
  private readonly sendSlots = new Map<string, Semaphore>();

  constructor(private readonly deps: DispatchHandlerDeps) {
    super();
    this.now = deps.now ?? (() => new Date());
    this.ledger = deps.ledger ?? new DeliveryLedger(0);
    this.critical = new CriticalActivity(deps.bulkYieldMs ?? 0);
    for (const [p, n] of Object.entries(deps.sendSlots ?? {})) if (n !== undefined) this.sendSlots.set(p, new Semaphore(n));
    this.writer = new OutcomeWriter({ events: deps.events, producer: deps.producer, producerFor: deps.producerFor, retryPolicy: deps.retryPolicy, now: this.now });
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
    // Copies of one record in flight at once run one after the other (the later ones then find
    // the first one's outcome in the ledger): read and replace the chain's tail synchronously.
    const key = `${msg.messageId}\u0000${msg.attempt}\u0000${msg.domain}`;
    const earlier = this.active.get(key);
    const p = (async () => {
      if (earlier) await earlier.catch(() => undefined);
      if (msg.priority === 'bulk') await this.critical.idle();
      await (msg.priority === 'critical' ? this.critical.track(this.dispatch(record, msg)) : this.dispatch(record, msg));
    })();
    this.active.set(key, p);
    try {
      await p;
    } finally {
      if (this.active.get(key) === p) this.active.delete(key);
    }
  }

  private async dispatch(record: StageRecord, msg: EmailReadyForDispatch): Promise<void> {
    const { topic, partition, message } = record;
    const known = await this.withoutSuppressed(msg, splitRecipients(this.ledger, msg.messageId, msg.attempt, msg.envelope.to));
    // Only records with recipients to send to are routed (DNS, pool choice): repeats are not.
    // A sending domain paused by its bounce or complaint rate (issue 13): its mail waits in the
    // retry tiers (deferred, SENDER_PAUSED), never sent and never failed, until it is resumed.
    const senderPaused = known.todo.length > 0 && msg.fromDomain !== undefined && this.deps.shaper?.senderPaused?.(msg.tenant, msg.fromDomain) === true;
    let routed: Routed = senderPaused
      ? { refusal: { kind: 'deferred', code: 'SENDER_PAUSED', reason: `sending domain ${msg.fromDomain} of tenant ${msg.tenant} is paused (bounce or complaint rate); resume: POST /v1/senders/<tenant>/<domain>/resume` } }
      : known.todo.length === 0 || !this.deps.router
        ? { route: route(msg, this.deps.routing) }
        : await this.deps.router.route(msg);
    if ('route' in routed && routed.route.site && routed.route.hosts[0]?.shaping && this.deps.shapingRules) {
      const r = routed.route;
      const verdict = siteKeyVerdict(message.key?.toString('utf8') ?? '', r.site!, msg.messageId, this.deps.shapingRules);
      if (verdict.kind === 'rekey') {
        // Another replica owns this site's (shard's) share of the limits: it sends the record.
        if (this.deps.router) this.deps.shaper?.release?.(r.source!);
        await this.deps.producer.send(topic, { key: verdict.key, value: message.value, ...(message.headers ? { headers: message.headers } : {}) });
        this.deps.logger.info({ messageId: msg.messageId, tenant: msg.tenant, site: r.site, key: message.key?.toString('utf8'), rekeyedTo: verdict.key, topic, partition, offset: message.offset }, 'record not keyed by its site; produced again under the site key');
        this.emit('rekey', msg.priority, r.site);
        return;
      }
      if (verdict.shapingSite !== r.site) routed = { route: shardRoute(r, verdict.shapingSite) };
    }
    const where = 'route' in routed ? routed.route : routed.refusal;
    const routeName = 'route' in routed ? routed.route.name : 'none';
    const log = lazyChild(this.deps.logger, () => ({
      messageId: msg.messageId,
      tenant: msg.tenant,
      route: routeName,
      ...(where.pool ? { pool: where.pool } : {}),
      ...(where.site ? { site: where.site } : {}),
      ...(where.source ? { source: where.source } : {}),
      attempt: msg.attempt,
      topic,
      partition,
      offset: message.offset,
    }));
    const work: PendingOutcome[] = [...known.pending.keys()];
    if (known.done.length > 0) {
      log().info({ recipients: known.done.length }, 'already handled; not sent again');
      this.emit('duplicate', msg.priority, known.done.length);
    }
    if (known.pending.size > 0) {
      const n = [...known.pending.values()].reduce((sum, rs) => sum + rs.length, 0);
      log().info({ recipients: n }, 'outcome known but not yet recorded; recording it without sending again');
    }
    let report: Omit<DeliveryReport, 'outcomes'> | undefined;
    if (known.todo.length > 0) {
      // An mx route (or a refusal after its source was chosen) holds a warm-up claim on the
      // source address: recordSent settles it when the message went, else it is given back.
      const claimed = 'route' in routed ? (routed.route.hosts[0]?.shaping ? routed.route.source : undefined) : routed.refusal.source;
      let went = false;
      let fresh: { outcomes: PendingOutcome[]; report: Omit<DeliveryReport, 'outcomes'> };
      try {
        fresh = 'refusal' in routed ? this.refused(msg, known.todo, routed.refusal) : await this.sendRouted(msg, known.todo, routed.route, log);
        went = fresh.outcomes.some((p) => p.outcome.kind === 'sent');
      } finally {
        if (claimed && !went && this.deps.router) this.deps.shaper?.release?.(claimed);
      }
      work.push(...fresh.outcomes);
      report = fresh.report;
    }
    if (work.length === 0) return;
    const kinds = await Promise.all(
      work.map(async (p) => {
        const kind = await this.writer.write(record, msg, p);
        this.ledger.complete(msg.messageId, msg.attempt, p.outcome.recipients, kind === 'sent');
        if (kind === 'sent') this.emit('verdict', topic, partition, message.offset, p.verdictAt, performance.now());
        return kind;
      }),
    );
    work.forEach((p, i) => {
      const o = p.outcome;
      const fields = { host: p.host, outcome: kinds[i], code: o.code, recipients: o.recipients.length, latencyMs: Math.round(p.latencyMs), reason: o.reason };
      if (kinds[i] === 'sent') {
        if (this.deps.logger.isLevelEnabled('debug')) log().debug(fields, 'sent');
      } else if (kinds[i] === 'failed' || kinds[i] === 'expired') log().warn(fields, `${kinds[i]}; dead-lettered`);
      else log().info(fields, kinds[i]);
    });
    if (report) {
      this.emit('delivery', {
        ...report,
        outcomes: work.map((p, i) => ({ kind: kinds[i], code: p.outcome.code, recipients: p.outcome.recipients.length })),
      } satisfies DeliveryReport);
    }
  }

  /**
   * Holds back the recipients the suppression list names (before routing, so before any SMTP):
   * their `suppressed` events are durable when this resolves (deterministic ids, so a repeat
   * of the record writes the same events again), and only the others stay to be sent.
   */
  private async withoutSuppressed<K extends { todo: string[] }>(msg: EmailReadyForDispatch, known: K): Promise<K> {
    if (!this.deps.suppressions || known.todo.length === 0) return known;
    const { send, held } = splitSuppressed(this.deps.suppressions, msg, known.todo, this.now().getTime());
    if (held.length === 0) return known;
    const producer = this.deps.producerFor?.(msg.priority) ?? this.deps.producer;
    await Promise.all(
      held.map(async (g) => {
        const input = suppressedEventInput(msg, g);
        const event = { ...this.deps.events.build(input), eventId: outcomeEventId(msg, 'suppressed', g.recipients) };
        await producer.send(Topics.events, { key: event.messageId, value: EmailEventContract.encode(event) });
        this.deps.events.emit('published', this.deps.events.stage, 'suppressed');
        this.ledger.complete(msg.messageId, msg.attempt, g.recipients);
        this.deps.logger.info({ messageId: msg.messageId, tenant: msg.tenant, attempt: msg.attempt, recipients: g.recipients.length, reason: g.reason, list: g.list }, 'recipients suppressed; not sent to');
        this.emit('suppressed', msg.priority, g.reason, g.recipients.length);
      }),
    );
    return { ...known, todo: send };
  }

  /** Outcomes of a record that could not be routed (no SMTP): one verdict for all of `to`. */
  private refused(msg: EmailReadyForDispatch, to: string[], refusal: RouteRefusal): { outcomes: PendingOutcome[]; report: Omit<DeliveryReport, 'outcomes'> } {
    const outcome: RecipientOutcome = { kind: refusal.kind, recipients: to, code: refusal.code, reason: refusal.reason, ...refusalVerdict(refusal.kind, refusal.code, refusal.category) };
    const p = this.pendingOf(outcome, { host: '', latencyMs: 0, connectionReused: false }, this.now(), { source: refusal.source, site: refusal.site });
    this.ledger.pending(msg.messageId, msg.attempt, to, p);
    const report = { priority: msg.priority, route: 'none', ...(refusal.site ? { site: refusal.site } : {}), ...(refusal.source ? { source: refusal.source } : {}), host: '', latencyMs: 0, connectionReused: false, fallback: false };
    return { outcomes: [p], report };
  }

  /**
   * A routed record: the shaper's admission for mx routes (waiting for a send token of the
   * (source, site), outside the priority's send slots so a throttled site holds none of them),
   * then one SMTP attempt within a send slot.
   */
  private async sendRouted(msg: EmailReadyForDispatch, to: string[], r: Route, log: () => Logger): Promise<{ outcomes: PendingOutcome[]; report: Omit<DeliveryReport, 'outcomes'> }> {
    const key = r.hosts[0]?.shaping;
    if (key && this.deps.shaper) {
      try {
        await this.deps.shaper.admit(key, msg.priority);
      } catch (err) {
        if (!(err instanceof ShapingDeferral)) throw err;
        return this.refused(msg, to, { kind: 'deferred', code: 'SHAPING_DEFERRED', reason: err.message, site: r.site, source: r.source });
      }
    }
    const send = () => this.send(msg, to, r, log, key);
    const slots = this.sendSlots.get(msg.priority);
    return slots ? slots.run(send) : send();
  }

  private pendingOf(outcome: RecipientOutcome, at: { host: string; latencyMs: number; connectionReused: boolean }, startedAt: Date, delivery: PendingOutcome['delivery']): PendingOutcome {
    return {
      outcome,
      host: at.host,
      latencyMs: at.latencyMs,
      connectionReused: at.connectionReused,
      attemptStartedAt: startedAt,
      verdictAt: performance.now(),
      written: { record: false, event: false },
      delivery,
    };
  }

  /** One SMTP attempt for `to`; each outcome is remembered as pending before anything is written. */
  private async send(msg: EmailReadyForDispatch, to: string[], r: Route, log: () => Logger, key?: ShapingKey): Promise<{ outcomes: PendingOutcome[]; report: Omit<DeliveryReport, 'outcomes'> }> {
    const startedAt = this.now();
    const attempt = await deliver({ ...msg, envelope: { from: msg.envelope.from, to } }, r, this.deps.fleets, (host, err, next) =>
      log().info({ host, code: err.code, reason: err.message, next }, 'SMTP try failed; trying again'),
    );
    const delivery = { tls: attempt.tls, source: r.source, site: r.site };
    const outcomes = outcomesOf(to, attempt.result).map((o) => this.pendingOf(o, attempt, startedAt, delivery));
    for (const p of outcomes) this.ledger.pending(msg.messageId, msg.attempt, p.outcome.recipients, p);
    if (key && this.deps.shaper) this.feedback(this.deps.shaper, key, r.pool, attempt.result, outcomes);
    const report = {
      priority: msg.priority,
      route: r.name,
      ...(r.site ? { site: r.site } : {}),
      ...(r.source ? { source: r.source } : {}),
      host: attempt.host,
      latencyMs: attempt.latencyMs,
      connectionReused: attempt.connectionReused,
      fallback: attempt.fallback,
    };
    return { outcomes, report };
  }

  /**
   * Tells the shaper what the site answered and what became of the message through the source.
   * Sends and bounces count in one unit, the message (one transaction through one source): a
   * message any recipient took is one `sent` (warm-up day counter, auto-pause sample — as the
   * warm-up tail counts `sent` events); a message with bounced recipients is one bounce,
   * recipient-class when any of them is (unknown or disabled mailbox: shaping/auto-pause.ts).
   * Counting bounces per recipient but sends per message would inflate the bounce rate of
   * multi-recipient messages.
   */
  private feedback(shaper: Shaper, key: ShapingKey, pool: string | undefined, result: Awaited<ReturnType<typeof deliver>>['result'], outcomes: PendingOutcome[]): void {
    if ('info' in result) shaper.observe(key, parseSmtpReply(result.info.response));
    else if (result.error.responseCode) shaper.observe(key, parseSmtpReply(result.error.response));
    else shaper.observe(key, { text: result.error.code ?? result.error.message });
    const sent = outcomes.some((p) => p.outcome.kind === 'sent');
    const bounced = outcomes.filter((p) => p.outcome.kind === 'bounced');
    if (sent) shaper.recordSent(key.source, pool);
    if (bounced.length > 0) shaper.recordBounce(key.source, bounced.some((p) => isRecipientClassBounce(p.outcome.reply?.code, p.outcome.reply?.enhanced, p.outcome.reply?.text)), pool);
  }
}
