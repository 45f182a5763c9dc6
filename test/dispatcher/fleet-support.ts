/** Builders shared by the dispatcher tests: targets, fleets and records pointed at test sinks. */
import net from 'node:net';
import { randomUUID } from 'node:crypto';
import type { EmailReadyForDispatch } from '../../shared/contracts/email-ready-for-dispatch.js';
import type { Priority } from '../../shared/config.js';
import { FleetRegistry } from '../../services/dispatcher/fleet-registry.js';
import type { Route, SmtpTarget } from '../../services/dispatcher/route.js';
import type { FleetOptions } from '../../services/dispatcher/smtp-fleet.js';

export function targetOf(port: number, host = '127.0.0.1'): SmtpTarget {
  return { key: `${host}:${port}`, host, port, secure: false, requireTLS: false, ignoreTLS: true, tlsRejectUnauthorized: true };
}

export function routeOf(...ports: number[]): Route {
  return { name: 'relay', hosts: ports.map((p) => targetOf(p)) };
}

export const FAST_FLEET: FleetOptions = {
  warm: 0,
  max: 10,
  reserve: { critical: 2, transactional: 1 },
  idleTimeoutMs: 60_000,
  ceilingCooldownMs: 60_000,
  acquireTimeoutMs: 10_000,
  timeouts: { connectionTimeoutMs: 2000, greetingTimeoutMs: 2000, socketTimeoutMs: 5000 },
};

export function fleetsWith(over: Partial<FleetOptions> = {}): FleetRegistry {
  return new FleetRegistry(() => ({ ...FAST_FLEET, ...over, timeouts: { ...FAST_FLEET.timeouts, ...over.timeouts } }));
}

/** A CRLF message like MailComposer renders, with a line starting with a dot (dot-stuffing). */
export function rawMessage(id: string, to: string): string {
  return [
    `Message-ID: <${id}@postline.test>`,
    'From: Sender <sender@postline.test>',
    `To: ${to}`,
    `Subject: test ${id}`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 7bit',
    '',
    `Hello ${id}.`,
    '.a line that starts with a dot',
    '..and two dots',
    '',
  ].join('\r\n');
}

export function recordFor(to: string[], over: Partial<EmailReadyForDispatch> = {}): EmailReadyForDispatch {
  const messageId = over.messageId ?? randomUUID();
  return {
    schemaVersion: 1,
    messageId,
    tenant: 'tenant-a',
    priority: 'transactional' as Priority,
    domain: to[0].split('@')[1],
    envelope: { from: 'bounces@postline.test', to },
    raw: rawMessage(messageId, to.join(', ')),
    acceptedAt: new Date().toISOString(),
    attempt: 1,
    ...over,
  };
}

/** A port nothing listens on (connections are refused). */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}
