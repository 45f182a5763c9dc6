/**
 * The SMTP submission listeners (smtp-server): one port with STARTTLS (587; AUTH only after it)
 * and one with implicit TLS (465), sharing every rule:
 *
 * - AUTH PLAIN or LOGIN; the password is an API key (`authenticate`), the username is ignored
 *   (the key alone names the tenant). No AUTH → 530; a bad key → 535, and a client IP with too
 *   many failures in a window is refused (454 at AUTH, 421 at connect) until the window ends.
 * - MAIL FROM: the tenant's message rate (451 4.7.1 above it); a non-empty MAIL FROM must be of
 *   one of the tenant's sender domains (553 5.7.1). RCPT TO: a usable address (553 5.1.3), at
 *   most 50 (452 4.5.3). SIZE is advertised; a larger message is read to its end and dropped (552).
 * - After DATA the message becomes a raw-MIME request (submission-record.ts; a refusal is its
 *   5xx) and `submit` produces it; 250 (with the message id) only once the broker acknowledged
 *   it, 451 when it did not in time: the client keeps the message and retries.
 *
 * Emits 'accepted' (priority), 'replayed' (), 'refused' (reason), 'authFailed' () and 'connectionError' (code).
 */
import { collectMessage } from '../../shared/smtp-data.js';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { PermanentError } from '../../shared/errors.js';
import type { SenderDomainPolicy } from '../../shared/sender-domains.js';
import { senderDomainProblem } from '../../shared/sender-domains.js';
import { parseEnvelopeAddress } from '../renderer/recipient-domains.js';
import { RawMessageRejected } from '../renderer/raw-message.js';
import { submissionRecord, type SubmissionRecord } from './submission-record.js';
import { SubmitRefused } from './submitter.js';
import { messageIds } from '../../shared/message-ids.js';

/** More RCPTs than this in one transaction are refused (452), as the API's 50 recipients. */
const MAX_RECIPIENTS = 50;

export interface GatewayServerOptions {
  host: string;
  submissionPort: number;
  submissionsPort: number;
  hostname?: string;
  tls: { key: Buffer; cert: Buffer };
  maxMessageBytes: number;
  maxConnections: number;
  rateLimitMax: number;
  rateLimitWindowSeconds: number;
  authFailureMax: number;
  authFailureWindowSeconds: number;
  /** Largest record the renderer reads (`renderer.maxRecordBytes`). */
  maxRecordBytes: number;
  /** The tenant owning an API key (ApiKeyStore.authenticate), or undefined. */
  authenticate: (key: string) => string | undefined | Promise<string | undefined>;
  senderDomains: SenderDomainPolicy;
  /**
   * Produces the record (and its accepted event); resolves once durable with the message id
   * (another one when an idempotency key replays an earlier message), rejects otherwise
   * (SubmitRefused carries its SMTP reply).
   */
  submit: (submission: SubmissionRecord) => Promise<{ messageId: string; replayed: boolean }>;
  logger: Logger;
  newId?: () => string;
  now?: () => Date;
}

export interface GatewayServer extends EventEmitter {
  /** The STARTTLS port listened on. */
  submissionPort: number;
  /** The implicit-TLS port listened on. */
  submissionsPort: number;
  close(): Promise<void>;
}

function smtpError(code: number, message: string): Error {
  return Object.assign(new Error(message), { responseCode: code });
}


/** The tenant an authenticated session belongs to. */
const tenantOf = (session: SMTPServerSession): string => String(session.user ?? '');

function listen(smtp: SMTPServer, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    smtp.server.once('error', onError);
    smtp.listen(port, host, () => {
      smtp.server.off('error', onError);
      resolve((smtp.server.address() as { port: number }).port);
    });
  });
}

export async function startGatewayServer(opts: GatewayServerOptions): Promise<GatewayServer> {
  const emitter = new EventEmitter();
  const log = opts.logger;
  const newId = opts.newId ?? messageIds();
  const now = opts.now ?? (() => new Date());
  const rate = opts.rateLimitMax > 0 ? new RateLimiterMemory({ points: opts.rateLimitMax, duration: opts.rateLimitWindowSeconds }) : undefined;
  const authFailures = opts.authFailureMax > 0 ? new RateLimiterMemory({ points: opts.authFailureMax, duration: opts.authFailureWindowSeconds }) : undefined;

  const refuse = (reason: string, code: number, message: string): Error => {
    emitter.emit('refused', reason);
    return smtpError(code, message);
  };
  /** True when the IP used up its AUTH failures in this window. */
  const blocked = async (ip: string): Promise<boolean> => {
    const res = await authFailures?.get(ip).catch(() => null);
    return !!res && res.consumedPoints >= opts.authFailureMax;
  };

  async function onAuth(password: string, session: SMTPServerSession): Promise<string> {
    if (await blocked(session.remoteAddress)) throw refuse('auth-blocked', 454, '4.7.0 too many failed authentication attempts from your address, try again later');
    const tenant = await opts.authenticate(password);
    if (tenant) return tenant;
    emitter.emit('authFailed');
    await authFailures?.consume(session.remoteAddress).catch(() => undefined);
    log.warn({ remote: session.remoteAddress }, 'SMTP authentication failed');
    throw refuse('auth-failed', 535, '5.7.8 authentication failed: the password must be a Postline API key');
  }

  async function onMailFrom(address: string, session: SMTPServerSession): Promise<void> {
    const tenant = tenantOf(session);
    if (address) {
      const parsed = parseEnvelopeAddress(address);
      if (!parsed) throw refuse('bad-sender', 553, `5.1.7 <${address.slice(0, 100)}>: not a usable sender address`);
      const problem = senderDomainProblem(opts.senderDomains, tenant, parsed.address);
      if (problem) throw refuse('sender-domain', 553, `5.7.1 MAIL FROM: ${problem}`);
    }
    if (!rate) return;
    try {
      await rate.consume(tenant);
    } catch (res) {
      if (!(res instanceof RateLimiterRes)) throw res;
      throw refuse('rate-limit', 451, `4.7.1 message rate limit of this tenant reached, try again in ${Math.ceil(res.msBeforeNext / 1000)} s`);
    }
  }

  function onRcptTo(address: string, session: SMTPServerSession): void {
    if (session.envelope.rcptTo.length >= MAX_RECIPIENTS) throw refuse('too-many-recipients', 452, '4.5.3 too many recipients');
    if (!parseEnvelopeAddress(address)) throw refuse('bad-recipient', 553, `5.1.3 <${address.slice(0, 100)}>: not a usable recipient address`);
  }

  async function onMessage(raw: Buffer, session: SMTPServerSession): Promise<string> {
    const tenant = tenantOf(session);
    const messageId = newId();
    const mailFrom = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
    const rcptTo = session.envelope.rcptTo.map((r) => r.address);
    let submission: SubmissionRecord;
    try {
      submission = submissionRecord({ tenant, messageId, acceptedAt: now().toISOString(), mailFrom, rcptTo, raw }, opts.senderDomains, opts.maxRecordBytes);
    } catch (err) {
      if (!(err instanceof RawMessageRejected)) throw err;
      log.info({ messageId, tenant, code: err.code, reason: err.message, remote: session.remoteAddress }, 'submitted message refused');
      throw refuse(err.code.toLowerCase().replaceAll('_', '-'), err.smtp.code, `${err.smtp.status} ${err.message}`);
    }
    let queued: { messageId: string; replayed: boolean };
    try {
      queued = await opts.submit(submission);
    } catch (err) {
      if (err instanceof SubmitRefused) throw refuse(err.reason, err.smtp.code, `${err.smtp.status} ${err.message}`);
      log.warn({ messageId, tenant, err: (err as Error).message, remote: session.remoteAddress }, 'not acknowledged by the broker; answered 451');
      if (err instanceof PermanentError) throw refuse('too-large', 552, `5.3.4 ${err.message}`);
      throw refuse('broker-unavailable', 451, '4.3.0 the message could not be queued, try again later');
    }
    const { priority } = submission.record;
    if (queued.replayed) {
      emitter.emit('replayed');
      log.info({ messageId: queued.messageId, tenant, remote: session.remoteAddress }, 'idempotent replay: nothing queued');
      return `2.0.0 queued as ${queued.messageId} (already queued with this X-Postline-Idempotency-Key)`;
    }
    emitter.emit('accepted', priority);
    // Debug, not info: a log line per message cost the gateway ~7 % of its CPU (formatting and a
    // synchronous write to the stdout pipe); the accepted event on email.events records each one.
    log.debug({ messageId: queued.messageId, tenant, priority, recipients: rcptTo.length, size: raw.length, remote: session.remoteAddress }, 'message accepted');
    return `2.0.0 queued as ${queued.messageId}`;
  }

  const reply = (work: Promise<unknown> | (() => unknown), callback: (err?: Error | null) => void) => {
    try {
      Promise.resolve(typeof work === 'function' ? work() : work).then(() => callback(), (err: Error) => callback(err));
    } catch (err) {
      callback(err as Error);
    }
  };

  const options = (secure: boolean): SMTPServerOptions => ({
    secure,
    name: opts.hostname || undefined,
    banner: 'Postline SMTP submission',
    key: opts.tls.key,
    cert: opts.tls.cert,
    size: opts.maxMessageBytes,
    maxClients: opts.maxConnections,
    authMethods: ['PLAIN', 'LOGIN'],
    // AUTH (and with it MAIL) only over TLS: on 587 after STARTTLS (538 before it).
    allowInsecureAuth: false,
    logger: false,
    onConnect(session, callback) {
      reply(
        blocked(session.remoteAddress).then((b) => {
          if (b) throw refuse('auth-blocked', 421, '4.7.0 too many failed authentication attempts from your address, try again later');
        }),
        callback,
      );
    },
    onAuth(auth, session, callback) {
      onAuth(auth.password ?? '', session).then(
        (user) => callback(null, { user }),
        (err: Error) => callback(err),
      );
    },
    onMailFrom(address, session, callback) {
      reply(onMailFrom(address.address, session), callback);
    },
    onRcptTo(address, session, callback) {
      reply(() => onRcptTo(address.address, session), callback);
    },
    onData(stream, session, callback) {
      collectMessage(stream, opts.maxMessageBytes).then((raw) => {
        if (raw === 'broken') return callback(smtpError(451, '4.3.0 message incomplete'));
        if (raw === 'too-large') {
          emitter.emit('refused', 'too-large');
          log.warn({ tenant: tenantOf(session), remote: session.remoteAddress, limit: opts.maxMessageBytes }, 'submitted message over the size limit; refused with 552');
          return callback(smtpError(552, `5.3.4 message exceeds the maximum size of ${opts.maxMessageBytes} bytes`));
        }
        onMessage(raw, session).then(
          (text) => callback(null, text),
          (err: Error) => callback(err),
        );
      });
    },
  });

  const servers = [new SMTPServer(options(false)), new SMTPServer(options(true))];
  for (const smtp of servers) {
    // A connection's socket or TLS error only ends that connection; without a listener it would end the process.
    smtp.on('error', (err: Error & { code?: string; remoteAddress?: string }) => {
      emitter.emit('connectionError', err.code ?? 'unknown');
      log.debug({ code: err.code, remote: err.remoteAddress, err: err.message }, 'SMTP connection error');
    });
  }
  const close = () => Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())))).then(() => undefined);
  let submissionPort: number;
  let submissionsPort: number;
  try {
    submissionPort = await listen(servers[0], opts.submissionPort, opts.host);
    submissionsPort = await listen(servers[1], opts.submissionsPort, opts.host);
  } catch (err) {
    await close();
    throw err;
  }
  return Object.assign(emitter, { submissionPort, submissionsPort, close });
}
