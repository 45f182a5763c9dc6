/**
 * Metrics of the suppression list in the dispatcher process, fed by events (the handler's
 * 'suppressed', the feeder's 'written' and 'kept') and the index's size when scraped.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { EventEmitter } from 'node:events';

export interface SuppressionParts {
  handler: EventEmitter;
  feeder?: EventEmitter;
  index?: { readonly size: number };
}

export function instrumentSuppressions(registry: Registry, { handler, feeder, index }: SuppressionParts): void {
  const registers = [registry];
  const held = new Counter({ name: 'postline_suppressed_recipients_total', help: 'Recipients not sent to because the suppression list holds them, by priority and reason', labelNames: ['priority', 'reason'], registers });
  handler.on('suppressed', (priority: string, reason: string, n: number) => held.inc({ priority, reason }, n));
  if (feeder) {
    const written = new Counter({ name: 'postline_suppressions_written_total', help: 'Suppressions the feeder wrote from events, by reason', labelNames: ['reason'], registers });
    const kept = new Counter({ name: 'postline_suppressions_kept_total', help: 'Suppressions the feeder left as they were (an entry at least as strong was live), by the kept reason', labelNames: ['reason'], registers });
    feeder.on('written', (reason: string, n: number) => written.inc({ reason }, n));
    feeder.on('kept', (reason: string, n: number) => kept.inc({ reason }, n));
  }
  if (index) {
    new Gauge({
      name: 'postline_suppression_list_entries',
      help: 'Entries of the suppression list (every tenant) this dispatcher holds in memory',
      registers,
      collect() {
        this.set(index.size);
      },
    });
  }
}
