/**
 * Delivers webhooks to one tenant's endpoints and decides what happens after each attempt.
 *
 * Per endpoint a lane: at most `endpointConcurrency` POSTs in flight, at most `endpointQueue`
 * waiting, and an opossum breaker. What cannot wait in memory (queue full) and what fails goes
 * to the webhooks' own retry tiers (`email.webhooks.retry.<tier>`), so `submit` resolves as soon
 * as the delivery succeeded or is durably on a tier: the events consumer commits and moves on,
 * and a slow or dead endpoint never holds up another.
 *
 * Order per message per endpoint: live deliveries of one message to one endpoint run one after
 * the other; once one of them waits on a tier, later ones for that (endpoint, message) are put
 * on a tier behind it (never before it) and a tier record that is not the head of its
 * message's line is put back behind the head. This bookkeeping is in memory (see the README:
 * after a restart, records already on tiers are delivered as they come due).
 *
 * An endpoint failing every attempt for `disableAfterMs` (counted from the first attempt of
 * the oldest delivery still failing, which survives restarts on the tier records) is disabled:
 * written to email.webhooks and a `disabled` event (ops scope webhook).
 *
 * Emits 'attempt' (outcome, type, seconds), 'retryScheduled' (tier), 'disabled' (endpointId),
 * 'breaker' (state) for metrics.
 */
import { EventEmitter } from 'node:events';
import CircuitBreaker from 'opossum';
import type { Logger } from 'pino';
import type { PostlineConfig } from '../../shared/config.js';
import type { BatchingProducer } from '../../shared/kafka/batching-producer.js';
import type { EventPublisher } from '../../shared/events.js';
import { Semaphore } from '../../shared/semaphore.js';
import type { WebhookEndpoint } from '../../shared/contracts/webhook-endpoint.js';
import type { EndpointBook } from '../../shared/webhooks/endpoint-book.js';
import { signedHeaders, signingSecrets, webhookBody } from '../../shared/webhooks/webhook-message.js';
import {
  WEBHOOK_JOB_VERSION,
  WEBHOOK_RETRY_TIERS,
  WebhookJobContract,
  nextTier,
  webhookRetryTopic,
  type DeliveryAttempt,
  type WebhookJob,
} from '../../shared/webhooks/delivery-job.js';
import type { PostResult, WebhookClient } from './webhook-client.js';
import { DeliveryLogWriter } from './delivery-log-writer.js';

/**
 * One delivery: a job without its envelope fields, plus (live deliveries) the request body
 * already built from the record's bytes — once per record, shared by all its endpoints.
 * Without it (a delivery from a tier) the body is serialized from `data`.
 */
export type Delivery = Omit<WebhookJob, 'schemaVersion' | 'notBefore'> & { body?: string };

class AttemptFailed extends Error {
  constructor(readonly result: PostResult) {
    super(result.error ?? 'failed');
  }
}

interface Line {
  /** Sequence numbers of this (endpoint, message)'s deliveries waiting on tiers, oldest first. */
  seqs: number[];
  /** The tier index the head is waiting on: followers are put on it too (due after the head). */
  tier: number;
}

export type EndpointBreaker = CircuitBreaker<[() => Promise<PostResult>], PostResult>;

/**
 * An endpoint's breaker: fires the POST it is given, a failed attempt counting as a failure;
 * opens at `breakerErrorPercent` failures over a 10 s window once `breakerVolume` attempts
 * were made, tries again after `breakerResetMs`. It counts, and keeps nothing per attempt:
 * opossum's rolling latency percentiles (every attempt's latency kept for the window, all of
 * them concatenated and sorted for every `stats` read, which opossum does on every failure and
 * for a snapshot every second) and its snapshots are off; the attempt's latency goes to the
 * delivery log and the metrics instead.
 */
export function endpointBreaker(config: PostlineConfig['webhooks']): EndpointBreaker {
  return new CircuitBreaker(
    async (post: () => Promise<PostResult>) => {
      const r = await post();
      if (!r.ok) throw new AttemptFailed(r);
      return r;
    },
    {
      timeout: false,
      errorThresholdPercentage: config.breakerErrorPercent,
      volumeThreshold: config.breakerVolume,
      resetTimeout: config.breakerResetMs,
      rollingCountTimeout: 10_000,
      rollingPercentilesEnabled: false,
      enableSnapshots: false,
    },
  );
}

class Lane {
  readonly slots: Semaphore;
  queued = 0;
  readonly chains = new Map<string, Promise<void>>();
  readonly lines = new Map<string, Line>();
  failingSince?: number;
  readonly breaker: EndpointBreaker;

  constructor(config: PostlineConfig['webhooks']) {
    this.slots = new Semaphore(config.endpointConcurrency);
    this.breaker = endpointBreaker(config);
  }
}

export interface DelivererDeps {
  book: EndpointBook;
  client: Pick<WebhookClient, 'post'>;
  producer: Pick<BatchingProducer, 'send'>;
  events: Pick<EventPublisher, 'publish'>;
  logger: Logger;
  config: PostlineConfig['webhooks'];
  now?: () => number;
  /** How long a delivery log attempt waits to share a record with others of its endpoint (default 100 ms). */
  logLingerMs?: number;
}

export class Deliverer extends EventEmitter {
  private readonly lanes = new Map<string, Lane>();
  private readonly slots: Semaphore;
  private seq = 0;
  private readonly now: () => number;
  private readonly log: DeliveryLogWriter;

  constructor(private readonly deps: DelivererDeps) {
    super();
    this.slots = new Semaphore(deps.config.concurrency);
    this.now = deps.now ?? Date.now;
    this.log = new DeliveryLogWriter({ producer: deps.producer, logger: deps.logger, lingerMs: deps.logLingerMs });
  }

  private laneOf(id: string): Lane {
    let lane = this.lanes.get(id);
    if (!lane) {
      lane = new Lane(this.deps.config);
      lane.breaker.on('open', () => this.emit('breaker', 'open'));
      lane.breaker.on('halfOpen', () => this.emit('breaker', 'halfOpen'));
      lane.breaker.on('close', () => this.emit('breaker', 'close'));
      this.lanes.set(id, lane);
    }
    return lane;
  }

  /** The endpoint changed (API): a re-enabled endpoint starts afresh; a deleted one loses its lane. */
  endpointChanged(id: string, value: WebhookEndpoint | undefined): void {
    const lane = this.lanes.get(id);
    if (!lane) return;
    if (!value) {
      lane.breaker.shutdown();
      this.lanes.delete(id);
    } else if (value.enabled && lane.failingSince !== undefined && value.disabledReason === undefined) {
      lane.failingSince = undefined;
      lane.breaker.close();
    }
  }

  /**
   * A live delivery (from email.events / email.inbound): resolves once it was delivered, put on
   * a retry tier, or dropped (endpoint disabled or gone) — never waiting on a full endpoint.
   */
  submit(d: Delivery): Promise<void> {
    const lane = this.laneOf(d.endpointId);
    if (!d.messageId) return this.run(lane, d);
    const prev = lane.chains.get(d.messageId);
    // Nothing of this message in flight to this endpoint (the usual case): start now, no chaining.
    const run = prev ? prev.then(() => this.run(lane, d)) : this.run(lane, d);
    lane.chains.set(d.messageId, run);
    const done = (): void => {
      if (lane.chains.get(d.messageId) === run) lane.chains.delete(d.messageId);
    };
    run.then(done, done);
    return run;
  }

  private async run(lane: Lane, d: Delivery): Promise<void> {
    const line = d.messageId ? lane.lines.get(d.messageId) : undefined;
    if (line) {
      // An earlier delivery of this message waits on a tier: this one goes behind it.
      const seq = ++this.seq;
      line.seqs.push(seq);
      await this.schedule({ ...d, seq }, line.tier);
      return;
    }
    if (lane.queued >= this.deps.config.endpointQueue) {
      // No room in memory for this endpoint: the first tier, without counting an attempt.
      await this.park(lane, d, 0);
      return;
    }
    await this.attempt(lane, d);
  }

  /** A delivery from a retry tier that is due. */
  async retry(job: WebhookJob): Promise<void> {
    const lane = this.laneOf(job.endpointId);
    const line = job.messageId ? lane.lines.get(job.messageId) : undefined;
    const { schemaVersion: _v, notBefore: _n, ...d } = job;
    if (line && job.seq !== undefined && line.seqs.includes(job.seq) && line.seqs[0] !== job.seq) {
      // Not the head of its message's line: back on the tier the head waits on.
      await this.schedule(d, line.tier);
      return;
    }
    await this.attempt(lane, d);
  }

  private async attempt(lane: Lane, d: Delivery): Promise<void> {
    lane.queued++;
    await lane.slots.acquire();
    await this.slots.acquire();
    lane.queued--;
    try {
      const endpoint = this.deps.book.byId(d.endpointId);
      if (!endpoint || !endpoint.enabled || endpoint.tenant !== d.tenant) {
        this.record(d, { outcome: 'skipped', error: endpoint ? 'endpoint disabled' : 'endpoint deleted' });
        this.leaveLine(lane, d);
        return;
      }
      const started = this.now();
      const at = new Date(started);
      const body = d.body ?? webhookBody(d.type, new Date(d.timestamp), d.data);
      const headers = signedHeaders(signingSecrets(endpoint.secrets, started), d.webhookId, at, body);
      let result: PostResult;
      try {
        result = await lane.breaker.fire(() => this.deps.client.post(endpoint.url, body, headers));
      } catch (err) {
        result = err instanceof AttemptFailed ? err.result : { ok: false, latencyMs: 0, error: lane.breaker.opened ? 'breaker open: the endpoint has been failing' : (err as Error).message };
      }
      const attempt = d.attempt + 1;
      this.emit('attempt', result.ok ? 'delivered' : 'failed', d.type, result.latencyMs / 1000);
      if (result.ok) {
        lane.failingSince = undefined;
        this.record({ ...d, attempt }, { outcome: 'delivered', status: result.status, latencyMs: result.latencyMs });
        this.leaveLine(lane, d);
        return;
      }
      await this.failed(lane, endpoint, { ...d, attempt }, result);
    } finally {
      this.slots.release();
      lane.slots.release();
    }
  }

  private async failed(lane: Lane, endpoint: WebhookEndpoint, d: Delivery, r: PostResult): Promise<void> {
    const now = this.now();
    const since = Math.min(lane.failingSince ?? now, Date.parse(d.firstAttemptAt) || now);
    lane.failingSince = since;
    const log = { messageId: d.messageId, tenant: d.tenant, endpoint: d.endpointId, attempt: d.attempt, status: r.status, error: r.error };
    if (now - since >= this.deps.config.disableAfterMs) {
      await this.disable(endpoint, now - since);
      this.record(d, { outcome: 'skipped', status: r.status, latencyMs: r.latencyMs, error: `${r.error}; endpoint disabled after failing for ${Math.round((now - since) / 60_000)} min` });
      this.leaveLine(lane, d);
      return;
    }
    const tier = r.refused ? undefined : nextTier(d.attempt);
    if (!tier) {
      this.deps.logger.warn(log, 'webhook delivery given up');
      this.record(d, { outcome: 'gave-up', status: r.status, latencyMs: r.latencyMs, error: r.error });
      this.emit('attempt', 'gave-up', d.type, 0);
      this.leaveLine(lane, d);
      return;
    }
    this.deps.logger.info({ ...log, tier: tier.name }, 'webhook delivery failed; retrying');
    const nextAttemptAt = await this.park(lane, d, WEBHOOK_RETRY_TIERS.indexOf(tier));
    this.record(d, { outcome: 'failed', status: r.status, latencyMs: r.latencyMs, error: r.error, nextAttemptAt });
  }

  /** Puts a delivery on a tier as the head (or the new head) of its message's line. */
  private async park(lane: Lane, d: Delivery, tier: number): Promise<string> {
    if (!d.messageId) return this.schedule(d, tier);
    let line = lane.lines.get(d.messageId);
    if (line && d.seq !== undefined && line.seqs[0] === d.seq) line.tier = tier;
    else if (!line) {
      line = { seqs: [++this.seq], tier };
      lane.lines.set(d.messageId, line);
      d = { ...d, seq: line.seqs[0] };
    }
    return this.schedule(d, tier);
  }

  /** A delivery done with (delivered, given up, dropped): the next of its line may go. */
  private leaveLine(lane: Lane, d: Delivery): void {
    const line = d.messageId ? lane.lines.get(d.messageId) : undefined;
    if (!line || d.seq === undefined) return;
    const i = line.seqs.indexOf(d.seq);
    if (i >= 0) line.seqs.splice(i, 1);
    if (line.seqs.length === 0) lane.lines.delete(d.messageId);
  }

  private async schedule(d: Delivery, tierIndex: number): Promise<string> {
    const tier = WEBHOOK_RETRY_TIERS[tierIndex];
    const notBefore = new Date(this.now() + tier.ms).toISOString();
    const { body: _body, ...rest } = d;
    const job: WebhookJob = { schemaVersion: WEBHOOK_JOB_VERSION, ...rest, notBefore };
    await this.deps.producer.send(webhookRetryTopic(tier.name), { key: d.messageId || d.endpointId, value: WebhookJobContract.encode(job) });
    this.emit('retryScheduled', tier.name);
    return notBefore;
  }

  private async disable(endpoint: WebhookEndpoint, failingMs: number): Promise<void> {
    const done = await this.deps.book.disable(endpoint.id, 'failing');
    if (!done) return; // already disabled (by another replica, or the tenant)
    this.deps.logger.warn({ tenant: endpoint.tenant, endpoint: endpoint.id, failingMs }, 'webhook endpoint disabled after failing too long');
    await this.deps.events.publish({ type: 'disabled', messageId: '', tenant: endpoint.tenant, reason: 'failing', ops: { scope: 'webhook', target: endpoint.id } });
    this.emit('disabled', endpoint.id);
  }

  /**
   * The delivery log entry, batched per endpoint by the DeliveryLogWriter (never awaited: the
   * log must not hold up deliveries). Fields left undefined are not written (JSON).
   */
  private record(d: Delivery, a: Pick<DeliveryAttempt, 'outcome' | 'status' | 'latencyMs' | 'error' | 'nextAttemptAt'>): void {
    this.log.add({
      endpointId: d.endpointId,
      tenant: d.tenant,
      at: new Date(this.now()).toISOString(),
      webhookId: d.webhookId,
      type: d.type,
      messageId: d.messageId,
      attempt: d.attempt,
      outcome: a.outcome,
      status: a.status,
      latencyMs: a.latencyMs,
      error: a.error,
      nextAttemptAt: a.nextAttemptAt,
      replay: d.replay || undefined,
    });
  }

  /** Stops every breaker's timers and writes the delivery log entries still waiting. */
  async close(): Promise<void> {
    for (const lane of this.lanes.values()) lane.breaker.shutdown();
    await this.log.close();
  }
}
