/**
 * Routes: which SMTP hosts a dispatch record leaves through, in the order to try them. Without a
 * routing file every record goes through the configured relay (its primary, then its
 * fallbacks); with one, `routing/mx-router.ts` resolves each record's pool, source address and
 * MX hosts into a Route of the same shape.
 */
import type { EmailReadyForDispatch } from '../../shared/contracts/email-ready-for-dispatch.js';
import type { PostlineConfig } from '../../shared/config.js';

/** One destination host and how to talk to it. `key` identifies its fleet. */
export interface SmtpTarget {
  key: string;
  host: string;
  port: number;
  /** Implicit TLS from the first byte. */
  secure: boolean;
  requireTLS: boolean;
  ignoreTLS: boolean;
  tlsRejectUnauthorized: boolean;
  auth?: { user: string; pass: string };
  /** EHLO name; undefined for the machine host name. */
  clientName?: string;
  /** Local address the connection binds to (a pool's source address). */
  localAddress?: string;
  /** TLS server name (SNI, certificate check) when `host` is an address: the MX host name. */
  servername?: string;
  /** Extra trusted CA certificates (PEM). */
  ca?: string;
  /** No delivery without TLS: a session that did not upgrade fails with TLS_REQUIRED. */
  tlsRequired?: boolean;
  /** Circuit breaker key when it is not `key` (MX hosts: one breaker per host, shared by sources). */
  breakerKey?: string;
  /** Fleet of a (source address, site) of an mx route: its shaping key. */
  shaping?: { source: string; site: string; domain: string };
}

export interface Route {
  /** Route name for logs and metrics (`relay`, or the routing file's route name). */
  name: string;
  /** Hosts in order of preference: primary first, then fallbacks. */
  hosts: SmtpTarget[];
  /** Pool (routing file), site and source address of the message (`relay` for the relay). */
  pool?: string;
  site?: string;
  source?: string;
}

export interface RoutingTable {
  relay: Route;
}

type RelayConfig = PostlineConfig['dispatcher']['relay'];

/** Splits `host`, `host:port` or `[v6addr]:port`; the port defaults to `defaultPort`. */
export function parseHostPort(spec: string, defaultPort: number): { host: string; port: number } {
  const s = spec.trim();
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
  if (v6) return { host: v6[1], port: v6[2] ? Number(v6[2]) : defaultPort };
  const m = /^([^:]+):(\d+)$/.exec(s);
  if (m) return { host: m[1], port: Number(m[2]) };
  return { host: s, port: defaultPort };
}

/** The relay route from configuration: primary and fallbacks share TLS and auth settings. */
export function relayRoute(relay: RelayConfig): Route {
  const target = (host: string, port: number): SmtpTarget => ({
    key: `${host}:${port}`,
    host,
    port,
    secure: relay.secure,
    requireTLS: relay.requireTLS,
    ignoreTLS: relay.ignoreTLS,
    tlsRejectUnauthorized: relay.tlsRejectUnauthorized,
    ...(relay.user ? { auth: { user: relay.user, pass: relay.password } } : {}),
    ...(relay.clientName ? { clientName: relay.clientName } : {}),
  });
  const hosts = [target(relay.host, relay.port)];
  for (const spec of relay.fallbackHosts) {
    const { host, port } = parseHostPort(spec, relay.port);
    if (!hosts.some((h) => h.key === `${host}:${port}`)) hosts.push(target(host, port));
  }
  return { name: 'relay', hosts };
}

/** Picks the route for a record. Pure: the table is built once from configuration. */
export function route(_record: Pick<EmailReadyForDispatch, 'domain' | 'pool'>, table: RoutingTable): Route {
  return table.relay;
}
