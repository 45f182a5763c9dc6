/**
 * The SMTP listener of the bounce domain (smtp-server). RCPT is accepted only for addresses
 * `routeOf` knows (a verified return path or mailto-unsubscribe token, a complaint address);
 * after DATA the message is split once, each recipient gets a verdict, and the events are
 * published. The reply waits for the broker's acknowledgement: 250 only once the events are
 * durable, 451 when the broker does not answer in time (the sender retries; at-least-once).
 *
 * With inbound routes (`routes`), RCPT is also accepted for addresses at tenants' inbound
 * domains; such a message becomes one `InboundMail` record per tenant (inbound-routes-receiver.ts),
 * answered 250 only once the records and their `received` events are acknowledged (451 when the
 * broker does not answer in time, 550 5.6.0 for a message that cannot be parsed).
 *
 * Emits 'message' (kind, outcome, reason) per accepted recipient of a received message (per
 * record for routes: kind 'route'), 'received' (tenant, DMARC verdict) per inbound mail record,
 * 'refused' (reason) per refused command or connection, and 'connectionError' (code).
 */
import { collectMessage } from '../../shared/smtp-data.js';
import { EventEmitter } from 'node:events';
import { SMTPServer, type SMTPServerSession } from 'smtp-server';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import type { Logger } from 'pino';
import type { EventInput } from '../../shared/events.js';
import type { FeedbackKeyring } from '../../shared/feedback/feedback-token.js';
import { readReportParts } from './report-parts.js';
import { decide, routeOf, uniqueEvents, type InboundRoute, type RouteOptions, type Verdict } from './feedback-decisions.js';
import type { BounceVerdict, BounceInput } from '../../shared/bounces/classify.js';
import type { RoutedRecipient } from '../../shared/inbound-routes/inbound-route-book.js';
import type { InboundMail } from '../../shared/contracts/inbound-mail.js';
import type { InboundRoutesReceiver } from './inbound-routes-receiver.js';
import { UnparseableMail } from './inbound-mail-parser.js';

/** More RCPTs than this in one transaction are refused (452): one bounce names one return path. */
const MAX_RECIPIENTS = 50;

export interface InboundServerOptions {
  host: string;
  port: number;
  /** EHLO name; empty for the host name. */
  hostname?: string;
  maxMessageBytes: number;
  maxConnections: number;
  /** Messages per client IP per window; 0: no limit. */
  rateLimitMax: number;
  rateLimitWindowSeconds: number;
  /** feedback.returnPathDomain. */
  domain: string;
  complaintLocalParts: readonly string[];
  keyring: FeedbackKeyring;
  classify: (reply: BounceInput) => BounceVerdict;
  /** Publishes one event; resolves once it is durable. */
  publish: (event: EventInput) => Promise<unknown>;
  publishTimeoutMs: number;
  logger: Logger;
  tls?: { key: Buffer; cert: Buffer };
  /** Inbound routes: tenants' inbound domains; absent, only the bounce domain is served. */
  routes?: Pick<InboundRoutesReceiver, 'match' | 'prepare' | 'deliver'>;
}

export interface InboundServer extends EventEmitter {
  port: number;
  close(): Promise<void>;
}

function smtpError(code: number, message: string): Error {
  return Object.assign(new Error(message), { responseCode: code });
}

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no broker acknowledgement within ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}


export async function startInboundServer(opts: InboundServerOptions): Promise<InboundServer> {
  const emitter = new EventEmitter();
  const routeOpts: RouteOptions = { keyring: opts.keyring, domain: opts.domain.toLowerCase(), complaintLocalParts: opts.complaintLocalParts.map((l) => l.toLowerCase()) };
  const limiter = opts.rateLimitMax > 0 ? new RateLimiterMemory({ points: opts.rateLimitMax, duration: opts.rateLimitWindowSeconds }) : undefined;
  const log = opts.logger;

  const refuse = (reason: string, code: number, message: string): Error => {
    emitter.emit('refused', reason);
    return smtpError(code, message);
  };

  // The route each routed RCPT TO matched when it was accepted (a route released meanwhile still gets the mail).
  const routedAt = new WeakMap<object, RoutedRecipient>();

  async function handle(raw: Buffer, session: SMTPServerSession): Promise<string> {
    const routed = session.envelope.rcptTo.map((r) => routedAt.get(r)).filter((r): r is RoutedRecipient => !!r);
    const records = routed.length > 0 ? await prepareRouted(raw, session, routed) : [];
    const replies: string[] = [];
    if (routed.length < session.envelope.rcptTo.length) replies.push(await handleFeedback(raw, session));
    if (records.length > 0) replies.push(await deliverRouted(records, session));
    return replies.join('; ');
  }

  async function prepareRouted(raw: Buffer, session: SMTPServerSession, routed: RoutedRecipient[]): Promise<InboundMail[]> {
    const tx = { envelopeFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '', remoteAddress: session.remoteAddress, ...(session.hostNameAppearsAs ? { helo: session.hostNameAppearsAs } : {}) };
    try {
      return await opts.routes!.prepare(raw, tx, routed);
    } catch (err) {
      if (err instanceof UnparseableMail) {
        emitter.emit('refused', 'unparseable');
        log.warn({ err: err.message, remote: session.remoteAddress, size: raw.length, tenants: [...new Set(routed.map((r) => r.tenant))] }, 'inbound mail cannot be parsed; refused with 550');
        throw smtpError(550, '5.6.0 this message cannot be parsed');
      }
      emitter.emit('message', 'route', 'retry', 'internal-error');
      log.error({ err, remote: session.remoteAddress, size: raw.length }, 'could not read an inbound mail; answered 451');
      throw smtpError(451, '4.3.0 temporarily unable to read this message, try again later');
    }
  }

  async function deliverRouted(records: InboundMail[], session: SMTPServerSession): Promise<string> {
    try {
      await withTimeout(opts.routes!.deliver(records), opts.publishTimeoutMs);
    } catch (err) {
      for (const r of records) emitter.emit('message', 'route', 'retry', 'broker-unavailable');
      log.warn({ err: (err as Error).message, records: records.length, remote: session.remoteAddress }, 'could not record inbound mail; answered 451');
      throw smtpError(451, '4.3.0 temporarily unable to accept this message, try again later');
    }
    for (const r of records) {
      emitter.emit('message', 'route', 'published', 'received');
      emitter.emit('received', r.tenant, r.auth?.dmarc ?? 'none');
      log.info({ inboundId: r.id, tenant: r.tenant, domain: r.domain, recipients: r.envelope.to.length, size: r.size, auth: r.auth, truncated: r.truncated, remote: r.remote.ip }, 'inbound mail received');
    }
    return `2.0.0 accepted as ${records.map((r) => r.id).join(' ')}`;
  }

  async function handleFeedback(raw: Buffer, session: SMTPServerSession): Promise<string> {
    const routes = session.envelope.rcptTo.map((r) => routeOf(r.address, routeOpts)).filter((r): r is InboundRoute => !!r);
    let verdicts: Verdict[];
    try {
      const parts = routes.some((r) => r.kind !== 'unsubscribe') ? await readReportParts(raw) : undefined;
      verdicts = routes.map((route) => decide(parts, route, { keyring: opts.keyring, classify: opts.classify }));
    } catch (err) {
      // A fault of ours, not of the message: the sender keeps it and retries after the fix.
      for (const r of routes) emitter.emit('message', r.kind, 'retry', 'internal-error');
      log.error({ err, remote: session.remoteAddress, size: raw.length }, 'could not read an inbound message; answered 451');
      throw smtpError(451, '4.3.0 temporarily unable to read this message, try again later');
    }
    const events = uniqueEvents(verdicts);
    try {
      await withTimeout(Promise.all(events.map((e) => opts.publish(e))), opts.publishTimeoutMs);
    } catch (err) {
      for (const v of verdicts) emitter.emit('message', v.kind, 'retry', 'broker-unavailable');
      log.warn({ err: (err as Error).message, events: events.length, remote: session.remoteAddress }, 'could not publish feedback events; answered 451');
      throw smtpError(451, '4.3.0 temporarily unable to record this report, try again later');
    }
    for (const v of verdicts) {
      emitter.emit('message', v.kind, v.outcome, v.reason);
      const fields = { kind: v.kind, outcome: v.outcome, reason: v.reason, messageId: v.messageId, tenant: v.tenant, remote: session.remoteAddress, size: raw.length };
      if (v.outcome === 'dropped') log.warn(fields, 'inbound message dropped');
      else log.info(fields, v.outcome === 'published' ? 'inbound feedback recorded' : 'inbound message ignored');
    }
    return `2.0.0 ${events.length} event(s) recorded`;
  }

  const smtp = new SMTPServer({
    name: opts.hostname || undefined,
    banner: 'Postline feedback service',
    size: opts.maxMessageBytes,
    maxClients: opts.maxConnections,
    authOptional: true,
    disabledCommands: opts.tls ? ['AUTH'] : ['AUTH', 'STARTTLS'],
    ...(opts.tls ? { key: opts.tls.key, cert: opts.tls.cert } : {}),
    logger: false,
    onConnect(session, callback) {
      if (!limiter) return callback();
      limiter
        .get(session.remoteAddress)
        .then((res) => callback(res && res.consumedPoints >= opts.rateLimitMax ? refuse('rate-limit', 421, '4.7.0 too many messages from your address, try again later') : undefined))
        .catch(() => callback());
    },
    onMailFrom(_address, session, callback) {
      if (!limiter) return callback();
      limiter.consume(session.remoteAddress).then(
        () => callback(),
        (res: unknown) => callback(res instanceof RateLimiterRes ? refuse('rate-limit', 421, '4.7.0 too many messages from your address, try again later') : undefined),
      );
    },
    onRcptTo(address, session, callback) {
      if (session.envelope.rcptTo.length >= MAX_RECIPIENTS) return callback(refuse('too-many-recipients', 452, '4.5.3 too many recipients'));
      if (routeOf(address.address, routeOpts)) return callback();
      const routed = opts.routes?.match(address.address);
      if (!routed) return callback(refuse('unknown-recipient', 550, `5.1.1 <${address.address.slice(0, 100)}>: no such recipient here`));
      routedAt.set(address, routed);
      callback();
    },
    onData(stream, session, callback) {
      collectMessage(stream, opts.maxMessageBytes).then(
        (raw) => {
          // The connection is gone (reported on the server's 'error'); nobody waits for a reply.
          if (raw === 'broken') return callback(smtpError(451, '4.3.0 message incomplete'));
          if (raw === 'too-large') {
            // smtp-server answers 552 itself once the stream is over its size; this is for the metric and the log.
            emitter.emit('refused', 'too-large');
            log.warn({ remote: session.remoteAddress, limit: opts.maxMessageBytes }, 'inbound message over the size limit; refused with 552');
            return callback(smtpError(552, '5.3.4 message exceeds the maximum size'));
          }
          handle(raw, session).then(
            (reply) => callback(null, reply),
            (err: Error) => callback(err),
          );
        },
        (err: Error) => callback(err),
      );
    },
  });

  // Every connection's socket error (a reset mid-DATA, a TLS failure) is reported here; without
  // a listener it would throw and take the process down. Only that connection is affected.
  smtp.on('error', (err: Error & { code?: string; remoteAddress?: string }) => {
    emitter.emit('connectionError', err.code ?? 'unknown');
    log.warn({ code: err.code, remote: err.remoteAddress, err: err.message }, 'SMTP connection error; the server serves on');
  });
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    smtp.server.once('error', onError);
    smtp.listen(opts.port, opts.host, () => {
      smtp.server.off('error', onError);
      resolve();
    });
  });
  const port = (smtp.server.address() as { port: number }).port;
  return Object.assign(emitter, {
    port,
    close: () => new Promise<void>((resolve) => smtp.close(() => resolve())),
  });
}
