/**
 * A message's story from its events: every step in order with the time since the previous
 * step and since acceptance, and where each recipient stands now. Pure: the read API fetches
 * the events, this decides what they mean.
 */
import { MESSAGE_STATES } from '../../../shared/message-states.js';

/** One event as the read API selects it from the events table. */
export interface StoredEvent {
  eventId: string;
  type: string;
  atMs: number;
  stage: string;
  priority: string;
  recipients: string[];
  domain: string;
  pool: string;
  attempt: number;
  smtpCode: number;
  smtpEnhanced: string;
  smtpMessage: string;
  smtpHost: string;
  reason: string;
  nextAttemptAtMs: number | null;
  latencyMs: number | null;
  connectionReused: boolean | null;
  tags: string[];
  tls: string;
  source: string;
  site: string;
  category: string;
  bounceClass: string;
  via: string;
  fromDomain: string;
  listId: string;
  dkimDomain: string;
  dkimSelector: string;
  /** opened / clicked: 1 / 0 (absent in rows read before the tracker existed). */
  engagementFirst?: number;
  engagementMachine?: number;
  machineReason?: string;
  linkIndex?: number | null;
  url?: string;
  clientIp?: string;
  userAgent?: string;
}

/** `opened` / `clicked`: what the tracker saw (see EmailEvent.engagement). */
export interface EngagementStep {
  first: boolean;
  machine: boolean;
  machineReason?: string;
  linkIndex?: number;
  url?: string;
  ip?: string;
  userAgent?: string;
}

export interface SmtpReply {
  code?: number;
  enhanced?: string;
  message?: string;
  host?: string;
}

export interface TimelineStep {
  eventId: string;
  type: string;
  at: string;
  stage: string;
  /** Milliseconds since the previous step (0 for the first). */
  sincePreviousMs: number;
  /** Milliseconds since the message was accepted (its first step when no `accepted` event is known). */
  sinceAcceptedMs: number;
  recipients?: string[];
  domain?: string;
  pool?: string;
  attempt?: number;
  smtp?: SmtpReply;
  reason?: string;
  nextAttemptAt?: string;
  latencyMs?: number;
  connectionReused?: boolean;
  /** `sent`: the TLS protocol of the SMTP session (`TLSv1.3`), or `none` for plaintext. */
  tls?: string;
  /** mx routes: the source address the message left from. */
  source?: string;
  /** mx routes: the site (mailbox provider) of the recipient's MX hosts. */
  site?: string;
  /**
   * `bounced` / `deferred`: what the failure means, from the bounce rule table (unknown-user,
   * mailbox-full, …, `dns`: the domain receives no mail); `complained`: the feedback type;
   * `suppressed`: the suppression's reason.
   */
  category?: string;
  /** `bounced` / `deferred`: recipient, infrastructure or content. */
  bounceClass?: string;
  /** How the news arrived when not from our own SMTP session: dsn, arf, ses, sendgrid, one-click, link, mailto, api. */
  via?: string;
  /** The message's From domain. */
  fromDomain?: string;
  /** The mailing list the message belongs to. */
  listId?: string;
  /** `rendered`: the DKIM key that signed the message (d= and s=). */
  dkim?: { domain: string; selector: string };
  /** `opened` / `clicked`: first or not, machine or human (and which rule), the link. */
  engagement?: EngagementStep;
}

export interface RecipientState {
  address: string;
  /** The latest delivery step that concerns this recipient: accepted, rendered, deferred, sent, bounced, expired, failed, suppressed. */
  state: string;
  /** When it reached that state, and how long after acceptance. */
  since: string;
  afterAcceptedMs: number;
  /** SMTP attempts (sent, deferred and bounced steps). */
  attempts: number;
  lastSmtp?: SmtpReply;
  opened: boolean;
  clicked: boolean;
  /** Opened / clicked by a person: at least one open / click not flagged as a machine's. */
  openedByHuman: boolean;
  clickedByHuman: boolean;
  complained: boolean;
  unsubscribed: boolean;
}

export interface MessageView {
  messageId: string;
  priority?: string;
  tags: string[];
  acceptedAt: string;
  lastEventAt: string;
  recipients: RecipientState[];
  timeline: TimelineStep[];
}

/** Delivery states, in the order they happen when timestamps tie. */
const LIFECYCLE: readonly string[] = MESSAGE_STATES;
const ENGAGEMENT = ['opened', 'clicked', 'complained', 'unsubscribed'];
const SMTP_OUTCOMES = new Set(['sent', 'deferred', 'bounced']);

function rank(type: string): number {
  const i = LIFECYCLE.indexOf(type);
  if (i >= 0) return i;
  const j = ENGAGEMENT.indexOf(type);
  return j >= 0 ? LIFECYCLE.length + j : LIFECYCLE.length + ENGAGEMENT.length;
}

/** Time order; ties by lifecycle order (accepted before rendered before sent), then event id. */
export function orderEvents(events: StoredEvent[]): StoredEvent[] {
  return [...events].sort((a, b) => a.atMs - b.atMs || rank(a.type) - rank(b.type) || (a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : 0));
}

const iso = (ms: number): string => new Date(ms).toISOString();
const domainOf = (address: string): string => address.slice(address.lastIndexOf('@') + 1).toLowerCase();

/** Whether an event concerns a recipient: listed, or of its domain when the event names only a domain, or message-wide. */
export function concerns(e: StoredEvent, address: string): boolean {
  if (e.recipients.length > 0) return e.recipients.includes(address);
  if (e.domain) return domainOf(address) === e.domain;
  return true;
}

function smtpOf(e: StoredEvent): SmtpReply | undefined {
  if (!e.smtpCode && !e.smtpMessage && !e.smtpEnhanced) return undefined;
  return {
    ...(e.smtpCode ? { code: e.smtpCode } : {}),
    ...(e.smtpEnhanced ? { enhanced: e.smtpEnhanced } : {}),
    ...(e.smtpMessage ? { message: e.smtpMessage } : {}),
    ...(e.smtpHost ? { host: e.smtpHost } : {}),
  };
}

function step(e: StoredEvent, prevMs: number, acceptedMs: number): TimelineStep {
  const smtp = smtpOf(e);
  return {
    eventId: e.eventId,
    type: e.type,
    at: iso(e.atMs),
    stage: e.stage,
    sincePreviousMs: e.atMs - prevMs,
    sinceAcceptedMs: e.atMs - acceptedMs,
    ...(e.recipients.length ? { recipients: e.recipients } : {}),
    ...(e.domain ? { domain: e.domain } : {}),
    ...(e.pool ? { pool: e.pool } : {}),
    ...(e.attempt ? { attempt: e.attempt } : {}),
    ...(smtp ? { smtp } : {}),
    ...(e.reason ? { reason: e.reason } : {}),
    ...(e.nextAttemptAtMs !== null ? { nextAttemptAt: iso(e.nextAttemptAtMs) } : {}),
    ...(e.latencyMs !== null ? { latencyMs: e.latencyMs } : {}),
    ...(e.connectionReused !== null ? { connectionReused: e.connectionReused } : {}),
    ...(e.tls ? { tls: e.tls } : {}),
    ...(e.source ? { source: e.source } : {}),
    ...(e.site ? { site: e.site } : {}),
    ...(e.category ? { category: e.category } : {}),
    ...(e.bounceClass ? { bounceClass: e.bounceClass } : {}),
    ...(e.via ? { via: e.via } : {}),
    ...(e.fromDomain ? { fromDomain: e.fromDomain } : {}),
    ...(e.listId ? { listId: e.listId } : {}),
    ...(e.dkimDomain ? { dkim: { domain: e.dkimDomain, selector: e.dkimSelector } } : {}),
    ...(e.type === 'opened' || e.type === 'clicked' ? { engagement: engagementOf(e) } : {}),
  };
}

function engagementOf(e: StoredEvent): EngagementStep {
  return {
    first: Boolean(e.engagementFirst),
    machine: Boolean(e.engagementMachine),
    ...(e.machineReason ? { machineReason: e.machineReason } : {}),
    ...(e.linkIndex !== undefined && e.linkIndex !== null ? { linkIndex: Number(e.linkIndex) } : {}),
    ...(e.url ? { url: e.url } : {}),
    ...(e.clientIp ? { ip: e.clientIp } : {}),
    ...(e.userAgent ? { userAgent: e.userAgent } : {}),
  };
}

function recipientState(address: string, ordered: StoredEvent[], acceptedMs: number): RecipientState {
  const s: RecipientState = { address, state: 'accepted', since: iso(acceptedMs), afterAcceptedMs: 0, attempts: 0, opened: false, clicked: false, openedByHuman: false, clickedByHuman: false, complained: false, unsubscribed: false };
  for (const e of ordered) {
    if (!concerns(e, address)) continue;
    if (LIFECYCLE.includes(e.type)) {
      s.state = e.type;
      s.since = iso(e.atMs);
      s.afterAcceptedMs = e.atMs - acceptedMs;
    }
    if (SMTP_OUTCOMES.has(e.type)) {
      s.attempts++;
      s.lastSmtp = smtpOf(e);
    }
    if (e.type === 'opened' || e.type === 'clicked' || e.type === 'complained' || e.type === 'unsubscribed') s[e.type] = true;
    if (e.type === 'opened' && !e.engagementMachine) s.openedByHuman = true;
    if (e.type === 'clicked' && !e.engagementMachine) s.clickedByHuman = true;
  }
  if (!s.lastSmtp) delete s.lastSmtp;
  return s;
}

/** The view of one message; null when there are no events. */
export function buildMessageView(messageId: string, events: StoredEvent[]): MessageView | null {
  if (events.length === 0) return null;
  const ordered = orderEvents(events);
  const acceptedMs = ordered.find((e) => e.type === 'accepted')?.atMs ?? ordered[0].atMs;
  const timeline: TimelineStep[] = [];
  let prev = ordered[0].atMs;
  for (const e of ordered) {
    timeline.push(step(e, prev, acceptedMs));
    prev = e.atMs;
  }
  const addresses = [...new Set(ordered.flatMap((e) => e.recipients))];
  const priority = ordered.find((e) => e.priority)?.priority;
  return {
    messageId,
    ...(priority ? { priority } : {}),
    tags: [...new Set(ordered.flatMap((e) => e.tags))],
    acceptedAt: iso(acceptedMs),
    lastEventAt: iso(ordered[ordered.length - 1].atMs),
    recipients: addresses.map((a) => recipientState(a, ordered, acceptedMs)),
    timeline,
  };
}
