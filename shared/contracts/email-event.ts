/**
 * `email.events` — every lifecycle step of every message, from every stage. Keyed by message
 * id. `eventId` is unique per event so the analytics sink can drop replays.
 */
import { Type, type Static } from '@sinclair/typebox';
import { contract } from './codec.js';

export const EMAIL_EVENT_VERSION = 1;

export const EVENT_TYPES = [
  'accepted',
  'rendered',
  'sent',
  'deferred',
  'bounced',
  'expired',
  'failed',
  'suppressed',
  'opened',
  'clicked',
  'complained',
  'unsubscribed',
  // Operational events, not about one message (messageId ''): a sender taken out of rotation and
  // back (`paused`, `resumed`: a source address or pool, tenant ''; a tenant's sending domain,
  // that tenant), and a site's adaptive back-off (`throttled`, `recovered`, tenant ''). See `ops`.
  'paused',
  'resumed',
  'throttled',
  'recovered',
  // Scheduled send: a message held until its `sendAt` (`scheduled`, with `nextAttemptAt` = sendAt),
  // and a message cancelled by `DELETE /v1/emails/:id` before it was sent (`cancelled`).
  'scheduled',
  'cancelled',
  // Inbound routes: a mail to a tenant's inbound domain was accepted (messageId = the inbound id).
  'received',
  // A customer's webhook endpoint switched off after failing too long (ops.scope 'webhook',
  // ops.target the endpoint id, tenant its tenant), and switched back on.
  'disabled',
  'enabled',
] as const;

/** The operational event types: not about one message; `ops` says what they are about. */
export const OPS_EVENTS: ReadonlySet<EventType> = new Set(['paused', 'resumed', 'throttled', 'recovered', 'disabled', 'enabled']);
export type EventType = (typeof EVENT_TYPES)[number];

/** Outcomes after which nothing more happens to a (message, recipient domain) delivery. */
export const TERMINAL_EVENTS: ReadonlySet<EventType> = new Set(['sent', 'bounced', 'expired', 'failed', 'suppressed']);

export const EmailEventSchema = Type.Object(
  {
    schemaVersion: Type.Literal(EMAIL_EVENT_VERSION),
    eventId: Type.String({ minLength: 1 }),
    type: Type.Union(EVENT_TYPES.map((t) => Type.Literal(t))),
    messageId: Type.String(),
    tenant: Type.String(),
    /** When it happened (ISO-8601). */
    at: Type.String({ format: 'date-time' }),
    /** The stage that emitted it: ingest, renderer, dispatcher, scheduler, tracker. */
    stage: Type.String(),
    priority: Type.Optional(Type.String()),
    recipients: Type.Optional(Type.Array(Type.String())),
    domain: Type.Optional(Type.String()),
    /** `rendered`: how many recipient domains (dispatch records) the message was split into. */
    domainCount: Type.Optional(Type.Integer({ minimum: 0 })),
    pool: Type.Optional(Type.String()),
    attempt: Type.Optional(Type.Integer()),
    smtp: Type.Optional(
      Type.Object({
        code: Type.Optional(Type.Integer()),
        enhanced: Type.Optional(Type.String()),
        message: Type.Optional(Type.String()),
        host: Type.Optional(Type.String()),
      }),
    ),
    reason: Type.Optional(Type.String()),
    nextAttemptAt: Type.Optional(Type.String({ format: 'date-time' })),
    latencyMs: Type.Optional(Type.Number()),
    connectionReused: Type.Optional(Type.Boolean()),
    tags: Type.Optional(Type.Array(Type.String())),
    /** `rendered`: the DKIM signature the message carries (signing domain d= and selector s=); absent when unsigned. */
    dkim: Type.Optional(Type.Object({ domain: Type.String(), selector: Type.String() }, { additionalProperties: false })),
    /**
     * When the message was accepted (ISO-8601), carried on delivery outcomes (`sent`,
     * `bounced`, `deferred`, `expired`) from the dispatch record's `acceptedAt`, so analytics
     * computes accepted → sent latency without joining events.
     */
    acceptedAt: Type.Optional(Type.String({ format: 'date-time' })),
    /** `sent`: the TLS protocol of the SMTP session that carried the message (`TLSv1.3`), or `none`. */
    tls: Type.Optional(Type.String()),
    /** Delivery outcomes over an mx route: the source address the message left from. */
    source: Type.Optional(Type.String()),
    /** Delivery outcomes over an mx route: the site (mailbox provider) of the recipient's MX hosts. */
    site: Type.Optional(Type.String()),
    /**
     * `bounced` and `deferred`: what the failure means, from the bounce rule table
     * (shared/bounces): unknown-user, mailbox-full, mailbox-disabled, spam, policy,
     * blocklisted-ip, authentication, throttled, greylisted, dns, tls, message-too-large, other.
     * `complained`: the feedback type (abuse, fraud, …). `suppressed`: the suppression's reason.
     */
    category: Type.Optional(Type.String()),
    /** `bounced` and `deferred`: whose problem it is — recipient, infrastructure or content. Only recipient-class bounces suppress. */
    bounceClass: Type.Optional(Type.String()),
    /**
     * How the news arrived when not from our own SMTP session: `dsn` (an asynchronous bounce at
     * the inbound service), `arf` (a complaint report), `ses`, `sendgrid` (a provider's webhook),
     * `one-click` / `link` / `mailto` (unsubscribe), `api` (a suppression added by hand).
     */
    via: Type.Optional(Type.String()),
    /** The sending (From) domain of the message, on delivery outcomes and feedback. */
    fromDomain: Type.Optional(Type.String()),
    /** The mailing list the message belongs to (unsubscribe scope), when it named one. */
    listId: Type.Optional(Type.String()),
    /**
     * Operational events (`paused`, `resumed`, `throttled`, `recovered`): what they are about.
     * `scope` source (a source address: `target` the address), pool (`target` the pool name),
     * sender (a tenant's sending domain: `target` the domain, the event's `tenant` the tenant) or
     * site (`target` the site key, `source` the source address). `reason` (on the event) says why:
     * bounce-rate, complaint-rate, cooldown, command, or the throttling reply's kind.
     */
    ops: Type.Optional(
      Type.Object(
        {
          scope: Type.Union([Type.Literal('source'), Type.Literal('pool'), Type.Literal('sender'), Type.Literal('site'), Type.Literal('webhook')]),
          target: Type.String(),
          /** paused: the rate that passed the threshold, over `sample` messages in the window. */
          rate: Type.Optional(Type.Number()),
          sample: Type.Optional(Type.Integer({ minimum: 0 })),
          /** paused: when it resumes by itself (ISO-8601). */
          until: Type.Optional(Type.String({ format: 'date-time' })),
          /** throttled / recovered: the share of the rule's limits now in force, and those limits (perSecond absent: unlimited). */
          factor: Type.Optional(Type.Number()),
          perSecond: Type.Optional(Type.Number()),
          maxConnections: Type.Optional(Type.Integer({ minimum: 0 })),
        },
        { additionalProperties: false },
      ),
    ),
    /**
     * `opened` and `clicked` (the tracker): `first` on a recipient's first open (or first click
     * of that link); `machine` when the request came from a machine rather than a person (Apple
     * Mail Privacy Protection's proxy, a security scanner, a link prefetcher) with `machineReason`
     * saying which rule; clicks carry the link's `linkIndex` (0-based, in document order) and
     * `url`; `ip` is truncated (IPv4 /24, IPv6 /48) and `userAgent` is cut to 256 characters.
     */
    engagement: Type.Optional(
      Type.Object(
        {
          first: Type.Optional(Type.Boolean()),
          machine: Type.Optional(Type.Boolean()),
          machineReason: Type.Optional(Type.String()),
          linkIndex: Type.Optional(Type.Integer({ minimum: 0 })),
          url: Type.Optional(Type.String()),
          ip: Type.Optional(Type.String()),
          userAgent: Type.Optional(Type.String()),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

export type EmailEvent = Static<typeof EmailEventSchema>;
export const EmailEventContract = contract('EmailEvent', EMAIL_EVENT_VERSION, EmailEventSchema);
