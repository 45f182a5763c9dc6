/** An in-memory EndpointTable: an EndpointBook without Kafka, for delivery tests and the webhooks bench. */
import type { EndpointTable } from '../../shared/webhooks/endpoint-book.js';
import type { WebhookEndpoint } from '../../shared/contracts/webhook-endpoint.js';

export class MemoryTable implements EndpointTable {
  readonly map = new Map<string, WebhookEndpoint>();
  get(key: string) {
    return this.map.get(key);
  }
  entries() {
    return this.map.entries();
  }
  async put(key: string, value: WebhookEndpoint | null) {
    if (value) this.map.set(key, value);
    else this.map.delete(key);
    return value ?? undefined;
  }
}
