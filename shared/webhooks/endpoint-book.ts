/**
 * Customers' webhook endpoints as every reader sees them: the compacted `email.webhooks` topic
 * in a CompactedTable (keyed by endpoint id, a tombstone deletes), indexed by tenant for the
 * delivery path. The API writes through it (create, update, rotate, delete: durable and read
 * back when they resolve); the webhooks service reads it and switches failing endpoints off.
 * A tenant only ever reads or changes its own endpoints: an id of another tenant is "not found".
 */
import { randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { CompactedTable } from '../kafka/compacted-table.js';
import type { BatchingProducer } from '../kafka/batching-producer.js';
import { Topics } from '../topics.js';
import { WEBHOOK_ENDPOINT_VERSION, WebhookEndpointContract, type WebhookEndpoint } from '../contracts/webhook-endpoint.js';
import { newWebhookSecret, signingSecrets } from './webhook-message.js';

export interface EndpointInput {
  url: string;
  description?: string;
  eventTypes?: string[];
  enabled?: boolean;
}

/** What the book needs of its table (a CompactedTable in production). */
export interface EndpointTable {
  get(key: string): WebhookEndpoint | undefined;
  entries(): IterableIterator<[string, WebhookEndpoint]>;
  put(key: string, value: WebhookEndpoint | null): Promise<WebhookEndpoint | undefined>;
}

export class EndpointBook {
  private readonly byTenant = new Map<string, Map<string, WebhookEndpoint>>();
  private count = 0;

  constructor(
    private readonly table: EndpointTable,
    private readonly now: () => number = Date.now,
  ) {
    for (const [id, e] of table.entries()) this.apply(id, e);
  }

  /** Keeps the tenant index current; the table calls it for every change it reads. */
  apply(id: string, value: WebhookEndpoint | undefined): void {
    for (const [tenant, m] of this.byTenant) {
      if (!m.delete(id)) continue;
      this.count--;
      if (m.size === 0) this.byTenant.delete(tenant);
    }
    if (!value) return;
    let m = this.byTenant.get(value.tenant);
    if (!m) this.byTenant.set(value.tenant, (m = new Map()));
    m.set(id, value);
    this.count++;
  }

  /** Endpoints of every tenant, enabled or not. */
  get size(): number {
    return this.count;
  }

  /** A tenant's endpoints, oldest first. */
  list(tenant: string): WebhookEndpoint[] {
    return [...(this.byTenant.get(tenant)?.values() ?? [])].sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  }

  /** A tenant's endpoints as they are now (the delivery path: no copy, no sort). */
  endpointsOf(tenant: string): Iterable<WebhookEndpoint> {
    return this.byTenant.get(tenant)?.values() ?? [];
  }

  get(tenant: string, id: string): WebhookEndpoint | undefined {
    const e = this.table.get(id);
    return e && e.tenant === tenant ? e : undefined;
  }

  /** Any tenant's endpoint (the delivery service). */
  byId(id: string): WebhookEndpoint | undefined {
    return this.table.get(id);
  }

  async create(tenant: string, input: EndpointInput): Promise<WebhookEndpoint> {
    const at = new Date(this.now()).toISOString();
    const endpoint: WebhookEndpoint = {
      schemaVersion: WEBHOOK_ENDPOINT_VERSION,
      id: `ep_${randomUUID().replace(/-/g, '')}`,
      tenant,
      url: input.url,
      ...(input.description ? { description: input.description } : {}),
      eventTypes: input.eventTypes ?? [],
      enabled: input.enabled ?? true,
      ...(input.enabled === false ? { disabledReason: 'api', disabledAt: at } : {}),
      secrets: [{ secret: newWebhookSecret(), createdAt: at }],
      createdAt: at,
      updatedAt: at,
    };
    return this.write(endpoint);
  }

  /** Changes the given fields; `enabled: true` re-enables an endpoint the service disabled. */
  async update(tenant: string, id: string, patch: Partial<EndpointInput>): Promise<WebhookEndpoint | undefined> {
    const current = this.get(tenant, id);
    if (!current) return undefined;
    const at = new Date(this.now()).toISOString();
    const next: WebhookEndpoint = { ...current, updatedAt: at };
    if (patch.url !== undefined) next.url = patch.url;
    if (patch.description !== undefined) next.description = patch.description;
    if (patch.eventTypes !== undefined) next.eventTypes = patch.eventTypes;
    if (patch.enabled !== undefined && patch.enabled !== current.enabled) {
      next.enabled = patch.enabled;
      if (patch.enabled) {
        delete next.disabledReason;
        delete next.disabledAt;
      } else Object.assign(next, { disabledReason: 'api', disabledAt: at });
    }
    return this.write(next);
  }

  /**
   * Adds a new secret (which signs from now on) and keeps the newest older one signing for
   * `overlapMs`; secrets already expired are dropped.
   */
  async rotate(tenant: string, id: string, overlapMs: number): Promise<WebhookEndpoint | undefined> {
    const current = this.get(tenant, id);
    if (!current) return undefined;
    const now = this.now();
    const at = new Date(now).toISOString();
    const [previous] = signingSecrets(current.secrets, now);
    const kept = previous && overlapMs > 0 ? [{ secret: previous.secret, createdAt: previous.createdAt, expiresAt: new Date(now + overlapMs).toISOString() }] : [];
    return this.write({ ...current, secrets: [{ secret: newWebhookSecret(), createdAt: at }, ...kept], updatedAt: at });
  }

  async remove(tenant: string, id: string): Promise<boolean> {
    if (!this.get(tenant, id)) return false;
    await this.table.put(id, null);
    this.apply(id, undefined);
    return true;
  }

  /** The webhooks service switches an endpoint off after it failed too long (reason `failing`). */
  async disable(id: string, reason: string): Promise<WebhookEndpoint | undefined> {
    const current = this.table.get(id);
    if (!current || !current.enabled) return undefined;
    const at = new Date(this.now()).toISOString();
    return this.write({ ...current, enabled: false, disabledReason: reason, disabledAt: at, updatedAt: at });
  }

  private async write(endpoint: WebhookEndpoint): Promise<WebhookEndpoint> {
    const stored = (await this.table.put(endpoint.id, endpoint)) ?? endpoint;
    this.apply(endpoint.id, stored);
    return stored;
  }
}

export interface OpenEndpointBookOptions {
  kafka: Kafka;
  producer: BatchingProducer;
  logger: Logger;
  topic?: string;
  /** Called for every change read from the topic (after the book applied it). */
  onChange?(id: string, value: WebhookEndpoint | undefined): void;
}

/** Reads `email.webhooks` to its end into an EndpointBook, then keeps it live. */
export async function openEndpointBook(opts: OpenEndpointBookOptions): Promise<{ book: EndpointBook; stop(): Promise<void> }> {
  let book: EndpointBook | undefined;
  const pending: Array<[string, WebhookEndpoint | undefined]> = [];
  const table = new CompactedTable<WebhookEndpoint>({
    kafka: opts.kafka,
    producer: opts.producer,
    topic: opts.topic ?? Topics.webhooks,
    logger: opts.logger,
    decode: (v) => WebhookEndpointContract.decode(v),
    encode: (v) => WebhookEndpointContract.encode(v),
    onChange: (id, value) => {
      if (!book) return void pending.push([id, value]);
      book.apply(id, value);
      opts.onChange?.(id, value);
    },
  });
  try {
    await table.start();
  } catch (err) {
    await table.stop().catch(() => undefined);
    throw err;
  }
  book = new EndpointBook(table);
  pending.length = 0;
  return { book, stop: () => table.stop() };
}
