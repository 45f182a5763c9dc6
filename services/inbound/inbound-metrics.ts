/** Prometheus metrics of the inbound service, subscribed to the server's events. */
import type { EventEmitter } from 'node:events';
import { Counter, type Registry } from 'prom-client';

export function instrumentInbound(server: EventEmitter, registry: Registry): void {
  const registers = [registry];
  const messages = new Counter({
    name: 'postline_inbound_messages_total',
    help: 'Messages received per accepted recipient, by kind (bounce, complaint, unsubscribe; route: per inbound mail record) and outcome (published, ignored, dropped, retry)',
    labelNames: ['kind', 'outcome'],
    registers,
  });
  const refused = new Counter({
    name: 'postline_inbound_refused_total',
    help: 'Connections, commands and messages refused, by reason (unknown-recipient, rate-limit, too-large, too-many-recipients, unparseable)',
    labelNames: ['reason'],
    registers,
  });
  const connectionErrors = new Counter({ name: 'postline_inbound_connection_errors_total', help: 'SMTP connections that ended in an error', labelNames: ['code'], registers });
  server.on('message', (kind: string, outcome: string) => messages.inc({ kind, outcome }));
  server.on('refused', (reason: string) => refused.inc({ reason }));
  const received = new Counter({
    name: 'postline_inbound_received_total',
    help: 'Mails accepted on inbound routes (one per tenant record), by tenant and DMARC verdict (pass, fail, none, temperror, …)',
    labelNames: ['tenant', 'verdict'],
    registers,
  });
  server.on('received', (tenant: string, verdict: string) => received.inc({ tenant, verdict }));
  server.on('connectionError', (code: string) => connectionErrors.inc({ code }));
}
