/**
 * Inbound routes as every stage sees them: the compacted `email.inbound-routes` read whole into a
 * CompactedTable (keyed by domain, first claim wins: `mergeClaim`), with the writes the API makes
 * (`claim`, `release`) and the lookup the inbound service makes for every RCPT TO (`match`).
 *
 * Two tenants claiming one domain at the same moment on two ingest replicas: both records reach
 * the topic, every reader applies them in log order, so every reader keeps the first; the second
 * claimant reads back someone else's route, writes the owner's record again (so that log
 * compaction, which keeps the last record of a key, keeps the owner's) and answers 409.
 */
import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { PermanentError } from '../errors.js';
import { CompactedTable } from '../kafka/compacted-table.js';
import type { BatchingProducer } from '../kafka/batching-producer.js';
import { Topics } from '../topics.js';
import { INBOUND_ROUTE_VERSION, InboundRouteContract, type InboundRoute } from '../contracts/inbound-route.js';
import { acceptsLocalPart, mergeClaim, splitRecipient } from './inbound-route-rules.js';

/** The domain is another tenant's (the API answers 409). */
export class DomainTaken extends PermanentError {
  constructor(readonly domain: string) {
    super('DOMAIN_TAKEN', `the inbound domain ${domain} is claimed by another tenant`);
  }
}

/** What the book needs of its table (a CompactedTable with `mergeClaim`; a map in unit tests). */
export interface InboundRouteStore {
  get(key: string): InboundRoute | undefined;
  put(key: string, value: InboundRoute | null): Promise<InboundRoute | undefined>;
  entries(): IterableIterator<[string, InboundRoute]>;
  catchUp(): Promise<void>;
}

/** A recipient that falls under a route. */
export interface RoutedRecipient {
  tenant: string;
  /** The route's domain. */
  domain: string;
  /** The address as given in RCPT TO. */
  address: string;
}

export class InboundRouteBook {
  private readonly now: () => Date;

  constructor(
    private readonly store: InboundRouteStore,
    opts: { now?: () => Date } = {},
  ) {
    this.now = opts.now ?? (() => new Date());
  }

  /** The route of `domain` (normalized by the caller), whoever owns it. */
  get(domain: string): InboundRoute | undefined {
    return this.store.get(domain);
  }

  /** A tenant's routes, by domain. */
  list(tenant: string): InboundRoute[] {
    return [...this.store.entries()].filter(([, r]) => r.tenant === tenant).map(([, r]) => r).sort((a, b) => a.domain.localeCompare(b.domain));
  }

  /** The route a recipient address falls under, or undefined (not a routed domain, or a local part the route does not take). */
  match(address: string): RoutedRecipient | undefined {
    const parts = splitRecipient(address);
    if (!parts) return undefined;
    const route = this.store.get(parts.domain);
    return route && acceptsLocalPart(route, parts.local) ? { tenant: route.tenant, domain: route.domain, address } : undefined;
  }

  /**
   * Claims `domain` (normalized by the caller) for `tenant`, or rewrites the tenant's own route.
   * Resolves once durable and visible here, with `created` false for a rewrite; throws
   * DomainTaken when another tenant owns it.
   */
  async claim(tenant: string, domain: string, localParts?: string[]): Promise<{ route: InboundRoute; created: boolean }> {
    const current = this.store.get(domain);
    if (current && current.tenant !== tenant) throw new DomainTaken(domain);
    const at = this.now().toISOString();
    const record: InboundRoute = {
      schemaVersion: INBOUND_ROUTE_VERSION,
      domain,
      tenant,
      ...(localParts && localParts.length > 0 ? { localParts: [...new Set(localParts.map((l) => l.toLowerCase()))].sort() } : {}),
      createdAt: current?.createdAt ?? at,
      updatedAt: at,
    };
    const stored = await this.store.put(domain, record);
    if (!stored || stored.tenant !== tenant) {
      // Another tenant's claim reached the log first: keep its record the last one of the key.
      if (stored) await this.store.put(domain, stored);
      throw new DomainTaken(domain);
    }
    return { route: stored, created: !current };
  }

  /** Releases the tenant's own route of `domain`; false when the tenant has none there. */
  async release(tenant: string, domain: string): Promise<boolean> {
    await this.store.catchUp();
    if (this.store.get(domain)?.tenant !== tenant) return false;
    await this.store.put(domain, null);
    return true;
  }
}

export interface OpenInboundRouteBookOptions {
  kafka: Kafka;
  producer: BatchingProducer;
  logger: Logger;
  /** Defaults to `email.inbound-routes`. */
  topic?: string;
  /** Told of every applied change (domain, route or undefined when released), e.g. for logs. */
  onChange?(domain: string, route: InboundRoute | undefined): void;
}

/** Opens the book over the topic; resolves once it has read the topic to its end. */
export async function openInboundRouteBook(opts: OpenInboundRouteBookOptions): Promise<{ book: InboundRouteBook; stop(): Promise<void> }> {
  const table = new CompactedTable<InboundRoute>({
    kafka: opts.kafka,
    producer: opts.producer,
    topic: opts.topic ?? Topics.inboundRoutes,
    logger: opts.logger,
    decode: (value) => InboundRouteContract.decode(value),
    encode: (value) => InboundRouteContract.encode(value),
    merge: mergeClaim,
    ...(opts.onChange ? { onChange: opts.onChange } : {}),
  });
  try {
    await table.start();
  } catch (err) {
    await table.stop();
    throw err;
  }
  return { book: new InboundRouteBook(table), stop: () => table.stop() };
}
