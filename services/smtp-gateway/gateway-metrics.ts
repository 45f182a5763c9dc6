/** Prometheus metrics of the SMTP gateway, subscribed to the server's events. */
import type { EventEmitter } from 'node:events';
import { Counter, type Registry } from 'prom-client';

export function instrumentGateway(server: EventEmitter, registry: Registry): void {
  const registers = [registry];
  const accepted = new Counter({ name: 'postline_smtp_gateway_accepted_total', help: 'Messages accepted (250) by the SMTP gateway, by priority', labelNames: ['priority'], registers });
  const refused = new Counter({
    name: 'postline_smtp_gateway_refused_total',
    help: 'Commands and messages refused, by reason (auth-failed, auth-blocked, rate-limit, too-large, sender-domain, bad-recipient, too-many-recipients, broker-unavailable, raw_*)',
    labelNames: ['reason'],
    registers,
  });
  const authFailures = new Counter({ name: 'postline_smtp_gateway_auth_failures_total', help: 'Failed AUTH attempts (a wrong or unknown API key)', registers });
  const connectionErrors = new Counter({ name: 'postline_smtp_gateway_connection_errors_total', help: 'SMTP connections that ended in an error (reset, TLS failure)', labelNames: ['code'], registers });
  const replayed = new Counter({ name: 'postline_smtp_gateway_replayed_total', help: 'Messages answered with an earlier message id (X-Postline-Idempotency-Key seen before); nothing queued', registers });
  server.on('accepted', (priority: string) => accepted.inc({ priority }));
  server.on('replayed', () => replayed.inc());
  server.on('refused', (reason: string) => refused.inc({ reason }));
  server.on('authFailed', () => authFailures.inc());
  server.on('connectionError', (code: string) => connectionErrors.inc({ code }));
}
