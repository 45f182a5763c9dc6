/** `postline_provider_feedback_total{provider,outcome}`, fed by the routes' 'outcome' events. */
import type { EventEmitter } from 'node:events';
import { Counter, type Registry } from 'prom-client';

export function instrumentProviderFeedback(observer: EventEmitter, registry: Registry): void {
  const total = new Counter({
    name: 'postline_provider_feedback_total',
    help: 'Provider (SES, SendGrid) notifications by outcome: bounced, complained, ignored (transient, not-feedback), dropped (no-ref, bad-ref, malformed), refused (bad-signature, bad-topic, bad-url, stale, invalid), unavailable, subscribed',
    labelNames: ['provider', 'outcome'],
    registers: [registry],
  });
  observer.on('outcome', (provider: string, outcome: string) => total.inc({ provider, outcome }));
}
