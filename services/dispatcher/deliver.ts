/**
 * One delivery attempt of one dispatch record: through the route's hosts in order, over a
 * pooled connection of each host's fleet. A connection that breaks under the message is
 * discarded and the message goes once more over another connection of the same fleet; a host
 * that cannot be reached — its connection fails, its circuit breaker is open and no connection
 * to it is left, or its connections keep breaking under the message — hands over to the next
 * host of the route at once. Only when every
 * host is unavailable does the attempt fail (and the message go to the retry tiers). What the
 * server said (or the error) is returned for `outcomesOf` to judge — this module never decides
 * retry or bounce.
 */
import type { Priority } from '../../shared/config.js';
import type { EmailReadyForDispatch } from '../../shared/contracts/email-ready-for-dispatch.js';
import type { SMTPConnectionSendInfo } from 'nodemailer/lib/smtp-connection';
import { HostUnavailableError, type SmtpFleet } from './smtp-fleet.js';
import { isBrokenConnection, isProtocolViolation, type SmtpFailure } from './smtp-outcome.js';
import type { FleetRegistry } from './fleet-registry.js';
import type { Route } from './route.js';
import { BreakerOpenError } from './host-breaker.js';

export interface DeliveryAttempt {
  /** The host (`host:port`) that answered, or the last one tried. */
  host: string;
  /** Time the final SMTP transaction took (0 when no connection was had). */
  latencyMs: number;
  /** The final transaction used a connection that had carried messages before. */
  connectionReused: boolean;
  /** Transactions tried (2 when a connection broke and the message went again). */
  tries: number;
  /** The message left through (or last tried) a host other than the route's primary. */
  fallback: boolean;
  /** TLS protocol of the session that carried the final transaction (`TLSv1.3`, `none`). */
  tls?: string;
  result: { info: SMTPConnectionSendInfo } | { error: SmtpFailure };
}

/** Notified when a try fails and another follows (for logs). */
export type RetryNotice = (host: string, err: SmtpFailure, next: 'same-host' | 'next-host') => void;

/** Connection-level failures worth one more try on another connection of the same host. */
const TRIES_PER_HOST = 2;

async function sendOnFleet(fleet: SmtpFleet, record: EmailReadyForDispatch, priority: Priority, onRetry?: RetryNotice): Promise<DeliveryAttempt> {
  const host = fleet.target.key;
  for (let tries = 1; ; tries++) {
    // Throws HostUnavailableError (caller moves on) or FleetBusyError / FLEET_CLOSED (deferred).
    const lease = await fleet.acquire(priority);
    const started = performance.now();
    try {
      const info = await lease.connection.send(record.envelope, record.raw);
      const tls = lease.connection.tlsProtocol;
      lease.release();
      return { host, latencyMs: performance.now() - started, connectionReused: lease.reused, tries, fallback: false, tls, result: { info } };
    } catch (e) {
      const err = e as SmtpFailure;
      const latencyMs = performance.now() - started;
      if (lease.connection.closed) lease.discard('broken', { throttled: err.responseCode === 421 });
      // A reply we cannot read leaves the session in an unknown state (RSET would wait on it).
      else if (isProtocolViolation(err)) lease.discard('protocol-error');
      else lease.release({ reset: true }); // the server refused the transaction; the session is fine
      if (isBrokenConnection(err) && tries < TRIES_PER_HOST) {
        onRetry?.(host, err, 'same-host');
        continue;
      }
      return { host, latencyMs, connectionReused: lease.reused, tries, fallback: false, result: { error: err } };
    }
  }
}

/**
 * The hosts of a route in the order to try them. For an mx route, a host among the domain's MX
 * hosts that has an idle connection goes first: any of them may take the mail, and reusing an
 * open connection (another domain on the same provider opened it) costs no connect, greeting,
 * EHLO and TLS handshake. Otherwise, and for the relay, the route's order (preference).
 */
export function hostOrder(route: Route, idle: (key: string) => number): Route['hosts'] {
  if (!route.site) return route.hosts;
  const i = route.hosts.findIndex((h) => idle(h.key) > 0);
  return i <= 0 ? route.hosts : [route.hosts[i], ...route.hosts.slice(0, i), ...route.hosts.slice(i + 1)];
}

/** Delivers `record` through `route`; never throws for SMTP or connection failures. */
export async function deliver(
  record: EmailReadyForDispatch,
  route: Route,
  fleets: FleetRegistry,
  onRetry?: RetryNotice,
): Promise<DeliveryAttempt> {
  let last: DeliveryAttempt | undefined;
  const hosts = hostOrder(route, (key) => fleets.idle(key));
  for (const [i, target] of hosts.entries()) {
    const fleet = fleets.get(target);
    const fallback = i > 0;
    const more = i < hosts.length - 1;
    if (!fleet.available()) {
      // Breaker open and no connection left: not tried at all (the breaker logged why).
      const err = new BreakerOpenError(target.key);
      last = { host: target.key, latencyMs: 0, connectionReused: false, tries: 0, fallback, result: { error: { message: err.message, code: err.code } } };
      continue;
    }
    try {
      const attempt = { ...(await sendOnFleet(fleet, record, record.priority, onRetry)), fallback };
      // Connections to this host keep breaking under the message (it is going down): the next
      // host now rather than a retry tier later. A server verdict (any reply) stays final.
      if ('error' in attempt.result && isBrokenConnection(attempt.result.error) && more) {
        onRetry?.(target.key, attempt.result.error, 'next-host');
        last = attempt;
        continue;
      }
      return attempt;
    } catch (e) {
      // Unreachable host: report the connection error itself (refused, greeting timeout, ...).
      const err = (e instanceof HostUnavailableError ? e.cause : e) as SmtpFailure;
      last = { host: target.key, latencyMs: 0, connectionReused: false, tries: 0, fallback, result: { error: err } };
      if (!(e instanceof HostUnavailableError)) return last;
      if (more) onRetry?.(target.key, err, 'next-host');
    }
  }
  return last ?? { host: '', latencyMs: 0, connectionReused: false, tries: 0, fallback: false, result: { error: { message: 'route has no hosts', code: 'NO_ROUTE' } } };
}
