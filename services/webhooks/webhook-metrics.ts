/** Webhook delivery metrics, fed by the Deliverer's events (labels bounded: outcome, webhook type, tier). */
import { Counter, Histogram, type Registry } from 'prom-client';
import type { EventEmitter } from 'node:events';

export function instrumentWebhooks(deliverer: EventEmitter, registry: Registry): void {
  const registers = [registry];
  const attempts = new Counter({ name: 'postline_webhook_deliveries_total', help: 'Webhook delivery attempts by outcome (delivered, failed, gave-up) and webhook type', labelNames: ['outcome', 'type'], registers });
  const seconds = new Histogram({ name: 'postline_webhook_delivery_seconds', help: 'Time of one webhook POST until its response was read', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers });
  const retries = new Counter({ name: 'postline_webhook_retries_scheduled_total', help: 'Webhook deliveries put on a retry tier', labelNames: ['tier'], registers });
  const disabled = new Counter({ name: 'postline_webhook_endpoints_disabled_total', help: 'Webhook endpoints disabled after failing longer than webhooks.disableAfterMs', registers });
  const breakers = new Counter({ name: 'postline_webhook_breaker_transitions_total', help: 'Endpoint breaker state changes (open, halfOpen, close)', labelNames: ['state'], registers });
  deliverer.on('attempt', (outcome: string, type: string, s: number) => {
    attempts.inc({ outcome, type });
    if (outcome !== 'gave-up') seconds.observe(s);
  });
  deliverer.on('retryScheduled', (tier: string) => retries.inc({ tier }));
  deliverer.on('disabled', () => disabled.inc());
  deliverer.on('breaker', (state: string) => breakers.inc({ state }));
}
