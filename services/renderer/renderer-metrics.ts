/**
 * Prometheus metrics of the render stage, fed by the Renderer's events (the renderer itself
 * does not import prom-client). Labels are bounded: priority and failure code.
 */
import { Counter, Histogram, type Registry } from 'prom-client';
import type { EventEmitter } from 'node:events';
import type { RenderedInfo } from './renderer.js';

/** `renderer` emits the Renderer's events: one Renderer, or every lane's forwarded to one emitter. */
export function instrumentRenderer(renderer: EventEmitter, registry: Registry): void {
  const registers = [registry];
  const rendered = new Counter({ name: 'postline_renderer_rendered_total', help: 'Messages rendered and handed to dispatch', labelNames: ['priority'], registers });
  const records = new Counter({
    name: 'postline_renderer_dispatch_records_total',
    help: 'Dispatch records produced (one per recipient domain)',
    labelNames: ['priority'],
    registers,
  });
  const failures = new Counter({ name: 'postline_renderer_failures_total', help: 'Records dead-lettered, by reason code', labelNames: ['code'], registers });
  const seconds = new Histogram({
    name: 'postline_renderer_render_seconds',
    help: 'Template rendering and MIME composition time per message (Kafka excluded)',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
    registers,
  });
  renderer.on('rendered', (info: RenderedInfo) => {
    rendered.inc({ priority: info.priority });
    records.inc({ priority: info.priority }, info.domains);
    seconds.observe(info.renderMs / 1000);
  });
  renderer.on('failed', (code: string) => failures.inc({ code }));
}
