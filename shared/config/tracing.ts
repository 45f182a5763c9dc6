/** Options of distributed tracing (`shared/tracing.ts`): OpenTelemetry, off by default. */
import { Type } from '@sinclair/typebox';
import { section, str } from './schema-helpers.js';

export const TracingSection = section(
  {
    exporter: Type.Union([Type.Literal('none'), Type.Literal('otlp')], {
      default: 'none',
      description: 'Where spans go: none (tracing off; W3C trace context in record headers is still forwarded) or otlp (OTLP over HTTP to otlpEndpoint).',
    }),
    otlpEndpoint: str('http://localhost:4318/v1/traces', 'OTLP/HTTP traces endpoint of a collector (OpenTelemetry Collector, Jaeger, Tempo).'),
    otlpHeaders: str('', 'Extra headers for the OTLP exporter as comma-separated key=value pairs (e.g. an API key; pass it from a secret).'),
    sampleRatio: Type.Number({
      default: 1,
      minimum: 0,
      maximum: 1,
      description: 'Share of new traces recorded (0–1). A trace that arrives with a sampling decision (traceparent) keeps it, so one email is traced at every stage or at none.',
    }),
  },
  'Tracing (OpenTelemetry)',
);
