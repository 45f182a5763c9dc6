/**
 * The provider webhooks, registered on the send API (public: the providers authenticate by
 * signature, not API key):
 * - `POST /feedback/ses`: SNS HTTPS subscription of the topic SES publishes bounces and
 *   complaints to. SubscriptionConfirmation → confirmed; Notification → events.
 * - `POST /feedback/sendgrid`: the signed SendGrid Event Webhook.
 * Each answers 2xx only once its events are acknowledged by the broker, 4xx for what is not a
 * genuine notification for us (the provider must not retry a forgery), 503 when the broker or
 * the certificate host did not answer in time (the provider retries). An endpoint whose
 * verification material is not configured answers 404.
 *
 * Emits 'outcome' (provider, outcome) on `observer` once per notification or event: bounced,
 * complained, an IgnoredOutcome, subscribed, unsubscribed, bad-signature, bad-topic, bad-url,
 * stale, invalid, unavailable.
 */
import type { EventEmitter } from 'node:events';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { EventInput } from '../../shared/events.js';
import type { EmailEvent } from '../../shared/contracts/email-event.js';
import { PermanentError } from '../../shared/errors.js';
import { RequestRejected, Unavailable } from '../../shared/http/errors.js';
import type { FeedbackKeyring } from '../../shared/feedback/feedback-token.js';
import type { ClassifyBounce } from '../../shared/bounces/classify.js';
import type { FeedbackDecision } from './feedback-decision.js';
import { decideSesNotification } from './ses-notification.js';
import { decideSendgridEvents } from './sendgrid-events.js';
import { SnsMessageRejected, type SnsVerifier } from './sns-verifier.js';
import { SendgridRequestRejected, SIGNATURE_HEADER, TIMESTAMP_HEADER, type SendgridVerifier } from './sendgrid-verifier.js';

export type Provider = 'ses' | 'sendgrid';

export interface ProviderFeedbackDeps {
  keyring: FeedbackKeyring;
  classify: ClassifyBounce;
  /** Publishes one event; resolves once it is on `email.events`. */
  publish: (event: EventInput) => Promise<EmailEvent>;
  /** Absent: `/feedback/ses` answers 404. */
  sns?: SnsVerifier;
  /** Confirm SubscriptionConfirmations (else they are only logged). */
  confirmSubscriptions: boolean;
  /** Absent: `/feedback/sendgrid` answers 404. */
  sendgrid?: SendgridVerifier;
  maxBodyBytes: number;
  publishTimeoutMs: number;
  observer?: EventEmitter;
}

/** Registers both routes in an encapsulated plugin (raw bodies of any content type, only here). */
export async function registerProviderFeedbackRoutes(app: FastifyInstance, deps: ProviderFeedbackDeps): Promise<void> {
  await app.register(async (scope) => {
    // SNS posts JSON as text/plain; both signatures cover the exact bytes, so the body stays raw.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
    const outcome = (provider: Provider, what: string) => deps.observer?.emit('outcome', provider, what);
    const refused = (provider: Provider, err: unknown): never => {
      if (err instanceof SnsMessageRejected || err instanceof SendgridRequestRejected) {
        outcome(provider, err.outcome);
        throw new RequestRejected('UNAUTHORIZED', err.message);
      }
      outcome(provider, err instanceof PermanentError ? 'invalid' : 'unavailable');
      throw err;
    };

    scope.post('/feedback/ses', { bodyLimit: deps.maxBodyBytes }, async (req, reply) => {
      if (!deps.sns) throw new RequestRejected('NOT_FOUND', 'SES feedback is not configured (providerFeedback.sesTopicArns)');
      const sns = deps.sns;
      const message = await Promise.resolve()
        .then(() => sns.verify(jsonOf(req)))
        .catch((err: unknown) => refused('ses', err));
      if (message.Type === 'SubscriptionConfirmation') {
        if (deps.confirmSubscriptions) await sns.confirm(message).catch((err: unknown) => refused('ses', err));
        outcome('ses', 'subscribed');
        req.log.info({ topicArn: message.TopicArn, confirmed: deps.confirmSubscriptions }, 'SNS subscription confirmation');
        return reply.code(200).send({ ok: true });
      }
      if (message.Type !== 'Notification') {
        outcome('ses', 'unsubscribed');
        req.log.warn({ topicArn: message.TopicArn, type: message.Type }, 'SNS message that is not a notification');
        return reply.code(200).send({ ok: true });
      }
      let notification: unknown;
      try {
        notification = JSON.parse(message.Message);
      } catch {
        notification = undefined;
      }
      await publishAll('ses', [decideSesNotification(notification, deps)], req);
      return reply.code(200).send({ ok: true });
    });

    scope.post('/feedback/sendgrid', { bodyLimit: deps.maxBodyBytes }, async (req, reply) => {
      if (!deps.sendgrid) throw new RequestRejected('NOT_FOUND', 'SendGrid feedback is not configured (providerFeedback.sendgridPublicKey)');
      try {
        deps.sendgrid.verify(rawOf(req), header(req, SIGNATURE_HEADER), header(req, TIMESTAMP_HEADER));
      } catch (err) {
        refused('sendgrid', err);
      }
      let events: unknown;
      try {
        events = jsonOf(req);
      } catch {
        events = undefined;
      }
      if (!Array.isArray(events)) {
        outcome('sendgrid', 'invalid');
        throw new RequestRejected('BAD_REQUEST', 'a SendGrid webhook body is a JSON array of events');
      }
      await publishAll('sendgrid', decideSendgridEvents(events, deps), req);
      return reply.code(200).send({ ok: true });
    });

    /** Publishes every event of one request and waits for all acks (or answers 503). */
    async function publishAll(provider: Provider, decisions: FeedbackDecision[], req: FastifyRequest): Promise<void> {
      const events: EventInput[] = [];
      for (const d of decisions) {
        if (d.kind === 'event') events.push(d.event);
        else {
          outcome(provider, d.outcome);
          const line = { provider, outcome: d.outcome, detail: d.detail, messageId: d.messageId, tenant: d.tenant };
          if (d.outcome === 'bad-ref' || d.outcome === 'malformed') req.log.warn(line, 'provider feedback dropped');
          else req.log.debug(line, 'provider feedback ignored');
        }
      }
      if (events.length === 0) return;
      let timer: NodeJS.Timeout | undefined;
      const expired = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Unavailable('the broker did not acknowledge the feedback events in time')), deps.publishTimeoutMs);
      });
      try {
        await Promise.race([Promise.all(events.map((e) => deps.publish(e))), expired]);
      } catch (err) {
        for (const _ of events) outcome(provider, 'unavailable');
        req.log.warn({ provider, messageIds: events.map((e) => e.messageId), err }, 'feedback events not acknowledged; answering 503');
        throw err instanceof Unavailable ? err : new Unavailable('the feedback events could not be published', err);
      } finally {
        clearTimeout(timer);
      }
      for (const e of events) {
        outcome(provider, e.type);
        req.log.info({ provider, messageId: e.messageId, tenant: e.tenant, type: e.type, category: e.category, bounceClass: e.bounceClass }, 'provider feedback');
      }
    }
  });
}

function rawOf(req: FastifyRequest): Buffer {
  return Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
}

function jsonOf(req: FastifyRequest): unknown {
  try {
    return JSON.parse(rawOf(req).toString('utf8'));
  } catch {
    throw new RequestRejected('INVALID_JSON', 'the body is not JSON');
  }
}

function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return typeof v === 'string' ? v : undefined;
}
