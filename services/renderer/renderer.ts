/**
 * The render stage's record handler: `email.requested` → validated request → content (inline
 * or template) → raw MIME, built once → one dispatch record per recipient domain (with
 * feedback on: per recipient, each copy with its own tokens, see feedback-copies.ts) on
 * `email.dispatch.<priority>` + a `rendered` event. `handle` resolves only when all of
 * those are durable, so the StageConsumer commits the offset after them.
 *
 * Failures:
 * - the record is invalid (not JSON, wrong shape, bad addresses, oversized, a priority other
 *   than its lane's: PRIORITY_MISMATCH, ...), rendering fails on the data (unknown template,
 *   missing variable, helper error), or a dispatch record would exceed its topic's
 *   `max.message.bytes` (MESSAGE_TOO_LARGE, also when the broker refuses one as too large):
 *   retrying cannot help, so the record goes to `email.dead` with a `failed` event and
 *   `handle` resolves; so does a From domain the tenant may not use (SENDER_DOMAIN, when the
 *   sender-domain policy lists the tenant) and, with `renderer.dkim.missingKey` = refuse, a
 *   From domain without a DKIM key (DKIM_KEY_MISSING);
 * - Kafka is unavailable (producing, catching up with `email.templates`): `handle` throws,
 *   nothing is committed, and the record is processed again.
 *
 * Emits 'rendered' ({ priority, domains, renderMs }), 'failed' (code), 'signed' ({ domain,
 * algorithm }) and 'unsigned' ('missing-key' | 'sign-failed') for metrics.
 */
import { EventEmitter } from 'node:events';
import type { IHeaders } from 'kafkajs';
import type { Logger } from 'pino';
import type { Priority } from '../../shared/config.js';
import { EmailRequestedContract, isRawRequestValue, type EmailRequested, type RawEmailRequested } from '../../shared/contracts/email-requested.js';
import { PermanentError, ValidationError } from '../../shared/errors.js';
import type { EventPublisher } from '../../shared/events.js';
import type { StageRecord } from '../../shared/kafka/stage-consumer.js';
import type { SendResult } from '../../shared/kafka/batching-producer.js';
import type { CompiledTemplate } from '../../shared/templates/template-compiler.js';
import { checkRequest, type EnvelopePlan } from './request-checks.js';
import { buildMessage, type MessageContent } from './mime-message.js';
import { messageContent, templateFor, type TemplateSource } from './message-content.js';
import { dispatchRecords, domainCopies, type MessageCopy, type OutgoingRecord } from './dispatch-records.js';
import { recipientCopies, type FeedbackPolicy } from './feedback-copies.js';
import { issuedAtOf, planRewrite, trackedHtml, trackingFor, type HtmlPlan, type MessageTracking, type TrackingPolicy } from './tracking-rewrite.js';
import { singleRecordBatchBytes } from './topic-limits.js';
import { recordIds } from '../../shared/record-ids.js';
import { ANY_SENDER_DOMAIN, senderDomainProblem, type SenderDomainPolicy } from '../../shared/sender-domains.js';
import { signMessage, type DkimPolicy, type SignOutcome } from './message-signing.js';
import type { RecordKeys } from './site-keying.js';
import { futureRequestDecision, type ScheduleLimits } from './future-requests.js';
import { Topics } from '../../shared/topics.js';
import { decodeRawRequest, type RawRequestPlan } from './raw-request.js';

export interface RendererLimits {
  /** Larger `email.requested` records are dead-lettered unread. */
  maxRecordBytes: number;
  /** Larger rendered messages are dead-lettered (they would not fit a dispatch record). */
  maxMessageBytes: number;
  /** `max.message.bytes` of each dispatch topic: a record that would exceed it is dead-lettered. */
  dispatchTopicBytes?: Record<string, number>;
}

export interface RendererDeps {
  templates: TemplateSource;
  producer: { send(topic: string, message: { key: string; value: Buffer; headers?: IHeaders }): Promise<SendResult> };
  events: Pick<EventPublisher, 'publish' | 'deadLetter'>;
  logger: Logger;
  limits: RendererLimits;
  /**
   * The priority of the lane this renderer consumes (`email.requested.<priority>`): a record
   * with another priority is dead-lettered (PRIORITY_MISMATCH). Unset for the shared lane.
   */
  lane?: Priority;
  /** DKIM signing; unset: messages are sent unsigned. */
  dkim?: DkimPolicy;
  /**
   * Which From domains each tenant may use: the ingest API's policy, checked again here for
   * records produced straight to Kafka (SENDER_DOMAIN). Default: any.
   */
  senderDomains?: SenderDomainPolicy;
  /** Dispatch record keys by site (site-keying.ts); unset: each record is keyed by its domain. */
  recordKeys?: RecordKeys;
  /**
   * Feedback tokens (feedback-copies.ts): one copy per recipient with X-Postline-Ref,
   * List-Unsubscribe and a signed return path. Unset: one record per recipient domain, as composed.
   */
  feedback?: FeedbackPolicy;
  /**
   * Open and click tracking (tracking-rewrite.ts), with `feedback` only: a tracked message's
   * HTML is rewritten per recipient copy (its own signed links and pixel). Unset: nothing tracked.
   */
  tracking?: TrackingPolicy;
  /** Scheduled send: a request with a future sendAt is parked on email.scheduled. Unset: rendered now. */
  schedule?: ScheduleLimits;
}

export interface RenderedInfo {
  priority: string;
  domains: number;
  /** Template + MIME time, without Kafka. */
  renderMs: number;
}

/** A dead letter keeps this much of an oversized record: enough to inspect, small enough to produce. */
const OVERSIZED_KEEP_BYTES = 64 * 1024;
/** Trace context travels from the request to everything produced for it. */
const TRACE_HEADERS = ['traceparent', 'tracestate'];

function asPermanent(err: unknown, code: string): PermanentError {
  return err instanceof PermanentError ? err : new PermanentError(code, (err as Error)?.message ?? String(err), { cause: err });
}

function traceHeaders(record: StageRecord): IHeaders | undefined {
  const from = record.message.headers;
  if (!from) return undefined;
  const out: IHeaders = {};
  for (const name of TRACE_HEADERS) if (from[name] !== undefined) out[name] = from[name];
  return Object.keys(out).length > 0 ? out : undefined;
}

/**
 * A signed copy as its own head + the shared composed message: signing only adds header lines
 * in front, so the copy ends with the composed bytes (checked; else the whole copy is its head).
 */
function headAndBody(copy: Buffer, composed: Buffer, composedText: string): { head: string; body: string } {
  const at = copy.length - composed.length;
  if (at >= 0 && copy.subarray(at).equals(composed)) return { head: copy.subarray(0, at).toString('utf8'), body: composedText };
  return { head: copy.toString('utf8'), body: '' };
}

export class Renderer extends EventEmitter {
  constructor(private readonly deps: RendererDeps) {
    super();
  }

  async handle(record: StageRecord): Promise<void> {
    if (isRawRequestValue(record.message.value)) return this.handleRaw(record);
    let req: EmailRequested;
    let plan: EnvelopePlan;
    try {
      ({ req, plan } = this.decode(record));
    } catch (err) {
      return this.fail(record, asPermanent(err, 'VALIDATION_FAILED'), recordIds(record.message.value));
    }
    const ids = { messageId: req.messageId, tenant: req.tenant };
    if (this.deps.schedule) {
      try {
        if (futureRequestDecision(req, record.message.headers, Date.now(), this.deps.schedule) === 'park') return await this.park(record, req);
      } catch (err) {
        if (err instanceof PermanentError) return this.fail(record, err, ids);
        throw err;
      }
    }
    let template: CompiledTemplate | undefined;
    try {
      template = await templateFor(req, this.deps.templates);
    } catch (err) {
      // Not found is permanent; anything else is Kafka failing to catch up: retry.
      if (err instanceof PermanentError) return this.fail(record, err, ids);
      throw err;
    }
    const started = performance.now();
    let copies: MessageCopy[];
    let signature: SignOutcome['signature'];
    try {
      ({ copies, signature } = await this.render(req, plan, template));
    } catch (err) {
      return this.fail(record, asPermanent(err, 'RENDER_FAILED'), ids);
    }
    return this.dispatch(record, req, plan, copies, signature, performance.now() - started);
  }

  /** Produces a rendered message's dispatch records and `rendered` event (or dead-letters what cannot fit). */
  private async dispatch(
    record: StageRecord,
    req: EmailRequested | RawEmailRequested,
    plan: EnvelopePlan,
    copies: MessageCopy[],
    signature: SignOutcome['signature'],
    renderMs: number,
  ): Promise<void> {
    const ids = { messageId: req.messageId, tenant: req.tenant };
    const headers = traceHeaders(record);
    // Never rejects, and waits a bounded time: a DNS problem keys the record by its domain.
    const keys = await this.deps.recordKeys?.keysFor(req, plan.groups.map((g) => g.domain));
    const outgoing = dispatchRecords(req, plan, copies, headers, keys);
    const oversized = this.oversized(outgoing);
    if (oversized) return this.fail(record, oversized, ids);
    try {
      await this.produce(req, plan, outgoing, renderMs, headers, signature);
    } catch (err) {
      // The broker refused a record as too large (its limit changed since start-up): no retry helps.
      if (err instanceof PermanentError) return this.fail(record, err, ids);
      throw err;
    }
    this.emit('rendered', { priority: req.priority, domains: plan.groups.length, renderMs } satisfies RenderedInfo);
    this.deps.logger.debug({ ...ids, topic: record.topic, partition: record.partition, offset: record.message.offset, domains: plan.groups.length }, 'rendered');
  }

  /** A foreign producer's future request: onto email.scheduled (the scheduler releases it at sendAt), with its `scheduled` event. */
  private async park(record: StageRecord, req: EmailRequested): Promise<void> {
    const recipients = [...req.to, ...(req.cc ?? []), ...(req.bcc ?? [])].map((a) => a.email);
    await Promise.all([
      this.deps.producer.send(Topics.scheduled, { key: req.messageId, value: record.message.value!, headers: traceHeaders(record) }),
      this.deps.events.publish({ type: 'scheduled', messageId: req.messageId, tenant: req.tenant, priority: req.priority, recipients, nextAttemptAt: new Date(Date.parse(req.sendAt!)).toISOString() }),
    ]);
    this.deps.logger.debug({ messageId: req.messageId, tenant: req.tenant, sendAt: req.sendAt }, 'parked until its sendAt');
  }

  /** The first dispatch record over its topic's `max.message.bytes`, as the error to dead-letter with. */
  private oversized(outgoing: OutgoingRecord[]): PermanentError | undefined {
    for (const r of outgoing) {
      const limit = this.deps.limits.dispatchTopicBytes?.[r.topic];
      const size = singleRecordBatchBytes(r.message);
      if (limit !== undefined && size > limit) {
        return new PermanentError('MESSAGE_TOO_LARGE', `the dispatch record is ${size} bytes; ${r.topic} accepts at most ${limit} (max.message.bytes)`);
      }
    }
    return undefined;
  }

  /** The dispatch records and the `rendered` event; resolves once all are durable. */
  private async produce(
    req: EmailRequested | RawEmailRequested,
    plan: EnvelopePlan,
    outgoing: OutgoingRecord[],
    renderMs: number,
    headers: IHeaders | undefined,
    signature: SignOutcome['signature'],
  ): Promise<void> {
    await Promise.all([
      ...outgoing.map((r) => this.deps.producer.send(r.topic, r.message)),
      // Same linger batch as the dispatch records: one round trip, and at-least-once either way.
      this.deps.events.publish(
        {
          type: 'rendered',
          messageId: req.messageId,
          tenant: req.tenant,
          priority: req.priority,
          recipients: plan.recipients,
          // Dispatch records: one per domain, or one per recipient with feedback copies.
          domainCount: outgoing.length,
          attempt: 1,
          latencyMs: Math.round(renderMs * 1000) / 1000,
          ...(req.pool ? { pool: req.pool } : {}),
          ...(req.tags?.length ? { tags: req.tags } : {}),
          ...(signature ? { dkim: { domain: signature.domain, selector: signature.selector } } : {}),
        },
        headers,
      ),
    ]);
  }

  private decode(record: StageRecord): { req: EmailRequested; plan: EnvelopePlan } {
    const value = record.message.value;
    if (value && value.length > this.deps.limits.maxRecordBytes) {
      throw new PermanentError('RECORD_TOO_LARGE', `record is ${value.length} bytes; at most ${this.deps.limits.maxRecordBytes}`);
    }
    const req = EmailRequestedContract.decode(value);
    const lane = this.deps.lane;
    if (lane !== undefined && req.priority !== lane) {
      throw new PermanentError('PRIORITY_MISMATCH', `a ${req.priority} message on ${record.topic}, the ${lane} lane; produce it to its own lane or to the shared email.requested`);
    }
    const { issues, envelope } = checkRequest(req);
    if (!envelope) throw new ValidationError(issues);
    const senderProblem = senderDomainProblem(this.deps.senderDomains ?? ANY_SENDER_DOMAIN, req.tenant, envelope.from.address);
    if (senderProblem) throw new PermanentError('SENDER_DOMAIN', `from.email: ${senderProblem}`);
    return { req, plan: envelope };
  }

  /**
   * Pure and deterministic for a given request and template (tokens are HMACs, DKIM signs at
   * `acceptedAt`): every failure is permanent. The body is composed once; with feedback on,
   * each recipient's copy is its own header lines in front of it, signed on its own.
   */
  private async render(req: EmailRequested, plan: EnvelopePlan, template: CompiledTemplate | undefined): Promise<{ copies: MessageCopy[]; signature: SignOutcome['signature'] }> {
    const content = messageContent(req, template);
    const built = await buildMessage(req, content, plan.from.domain);
    if (!this.deps.feedback) {
      const { raw, signature } = await this.sign(built.raw, plan.from.domain, req);
      return { copies: domainCopies(plan, this.checkedSize(raw)), signature };
    }
    const copies: MessageCopy[] = [];
    let signature: SignOutcome['signature'];
    const body = built.raw.toString('utf8');
    const tracking = this.deps.tracking && content.html !== undefined ? trackingFor(req, this.deps.tracking) : undefined;
    // The HTML is tokenized once; each copy only signs its links.
    const htmlPlan = tracking ? planRewrite(content.html ?? '') : undefined;
    for (const copy of recipientCopies(req, plan, this.deps.feedback)) {
      // Tracked: this recipient's own HTML (signed links and pixel), composed for this copy alone.
      const own = tracking && htmlPlan ? await this.trackedCopy(req, content, plan, { tracking, htmlPlan }, copy.recipient) : undefined;
      const composed = own ?? built.raw;
      const signed = await this.sign(Buffer.concat([Buffer.from(copy.head, 'utf8'), composed]), plan.from.domain, req);
      signature ??= signed.signature;
      this.checkedSize(signed.raw);
      copies.push({ domain: copy.domain, envelopeFrom: copy.envelopeFrom, to: [copy.recipient], ...headAndBody(signed.raw, composed, own ? composed.toString('utf8') : body) });
    }
    return { copies, signature };
  }

  /** The copy composed with tracked HTML, or undefined (untracked) when a field is too long for a token. */
  private async trackedCopy(
    req: EmailRequested,
    content: MessageContent,
    plan: EnvelopePlan,
    t: { tracking: MessageTracking; htmlPlan: HtmlPlan },
    recipient: string,
  ): Promise<Buffer | undefined> {
    if (!this.deps.tracking) return undefined;
    let html: string;
    try {
      html = trackedHtml(t.htmlPlan, t.tracking, this.deps.tracking, { messageId: req.messageId, tenant: req.tenant, recipient, issuedAt: issuedAtOf(req) });
    } catch {
      return undefined;
    }
    return (await buildMessage(req, { ...content, html }, plan.from.domain)).raw;
  }

  private checkedSize(raw: Buffer): string {
    if (raw.length > this.deps.limits.maxMessageBytes) {
      throw new PermanentError('MESSAGE_TOO_LARGE', `rendered message is ${raw.length} bytes; at most ${this.deps.limits.maxMessageBytes}`);
    }
    return raw.toString('utf8');
  }

  /** DKIM, signed at `acceptedAt` so that rendering the record again yields the same bytes. */
  private async sign(raw: Buffer, fromDomain: string, req: Pick<EmailRequested, 'messageId' | 'tenant' | 'acceptedAt'>): Promise<SignOutcome> {
    if (!this.deps.dkim) return { raw };
    const out = await signMessage(raw, fromDomain, new Date(req.acceptedAt), this.deps.dkim);
    if (out.signature) this.emit('signed', { domain: out.signature.domain, algorithm: out.signature.algorithm });
    if (out.unsigned) this.emit('unsigned', out.unsigned);
    if (out.error) this.deps.logger.error({ messageId: req.messageId, tenant: req.tenant, err: out.error }, 'DKIM signing failed; sending unsigned');
    return out;
  }

  /**
   * The raw-MIME path (raw-request.ts, raw-message.ts): no template and no composing. The
   * client's message, checked and normalised, is signed like composed mail and goes to the SMTP
   * envelope's recipients, one record per domain, or one copy per recipient with feedback on.
   */
  private async handleRaw(record: StageRecord): Promise<void> {
    const value = record.message.value;
    let decoded: RawRequestPlan;
    try {
      if (value && value.length > this.deps.limits.maxRecordBytes) {
        throw new PermanentError('RECORD_TOO_LARGE', `record is ${value.length} bytes; at most ${this.deps.limits.maxRecordBytes}`);
      }
      decoded = decodeRawRequest(value, { senderDomains: this.deps.senderDomains ?? ANY_SENDER_DOMAIN, lane: this.deps.lane, topic: record.topic });
    } catch (err) {
      return this.fail(record, asPermanent(err, 'VALIDATION_FAILED'), recordIds(value));
    }
    const { req, plan } = decoded;
    const started = performance.now();
    let copies: MessageCopy[];
    let signature: SignOutcome['signature'];
    try {
      ({ copies, signature } = await this.renderRaw(decoded));
    } catch (err) {
      return this.fail(record, asPermanent(err, 'RENDER_FAILED'), { messageId: req.messageId, tenant: req.tenant });
    }
    return this.dispatch(record, req, plan, copies, signature, performance.now() - started);
  }

  private async renderRaw({ req, plan, prepared, envelopeFrom }: RawRequestPlan): Promise<{ copies: MessageCopy[]; signature: SignOutcome['signature'] }> {
    const message = prepared.message;
    if (!this.deps.feedback) {
      const { raw, signature } = await this.sign(message, plan.from.domain, req);
      const body = this.checkedSize(raw);
      return { copies: plan.groups.map((g) => ({ domain: g.domain, envelopeFrom, to: g.recipients, head: '', body })), signature };
    }
    const copies: MessageCopy[] = [];
    let signature: SignOutcome['signature'];
    const text = message.toString('utf8');
    const meta = { ...req, headers: prepared.ownListUnsubscribe ? { 'List-Unsubscribe': '' } : undefined };
    for (const copy of recipientCopies(meta, plan, this.deps.feedback)) {
      const signed = await this.sign(Buffer.concat([Buffer.from(copy.head, 'utf8'), message]), plan.from.domain, req);
      signature ??= signed.signature;
      this.checkedSize(signed.raw);
      // A signed return path replaces the envelope sender; without one, MAIL FROM as the client gave it.
      const from = copy.envelopeFrom === plan.from.address ? envelopeFrom : copy.envelopeFrom;
      copies.push({ domain: copy.domain, envelopeFrom: from, to: [copy.recipient], ...headAndBody(signed.raw, message, text) });
    }
    return { copies, signature };
  }

  /** Dead-letters the record with a `failed` event (when the ids are known); both durable on return. */
  private async fail(record: StageRecord, err: PermanentError, ids: { messageId?: string; tenant?: string }): Promise<void> {
    const { topic, partition, message } = record;
    this.deps.logger.warn({ ...ids, topic, partition, offset: message.offset, code: err.code, reason: err.message }, 'record dead-lettered');
    const kept =
      err.code === 'RECORD_TOO_LARGE' && message.value ? { ...record, message: { ...message, value: message.value.subarray(0, OVERSIZED_KEEP_BYTES) } } : record;
    await this.deps.events.deadLetter(kept, err.code, err.message, ids);
    this.emit('failed', err.code);
  }
}
