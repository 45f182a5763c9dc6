/**
 * Distributed tracing: one email's path — the POST, every Kafka hop, every stage's work on it —
 * is one trace. W3C trace context (`traceparent`, `tracestate`) travels in Kafka record headers;
 * OpenTelemetry records the spans and exports them over OTLP/HTTP when configured (off by
 * default: then nothing is recorded and the API below costs a flag check).
 *
 * HTTP is traced by @opentelemetry/instrumentation-http (the send API's requests, ClickHouse
 * calls). Kafka is traced here, at the two places every Postline record passes through —
 * `BatchingProducer.send` and `StageConsumer`'s handler — rather than by patching kafkajs
 * (@opentelemetry/instrumentation-kafkajs): the batching producer hands many callers' records to
 * one `sendBatch` from a linger timer, so a patched kafkajs would parent every record of a batch
 * on whichever request started the timer, and its batch consumer only *links* each record to its
 * producer, so a message's path would never be one trace. Spans follow the OpenTelemetry
 * messaging conventions (`send <topic>` PRODUCER, `process <topic>` CONSUMER).
 *
 * OpenTelemetry's API is process-global by design (every library finds the one tracer provider);
 * `initTracing` sets it up once per process, first thing in a stage's start-up.
 */
import { createRequire } from 'node:module';
import os from 'node:os';
import {
  INVALID_SPAN_CONTEXT,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  context,
  propagation,
  trace,
  type Attributes,
  type Context,
  type Link,
  type Span,
  type TextMapGetter,
  type TextMapSetter,
} from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BatchSpanProcessor,
  ParentBasedSampler,
  SimpleSpanProcessor,
  TraceIdRatioBasedSampler,
  TracerProvider,
  type SpanExporter,
} from '@opentelemetry/sdk-trace';
import type { Static } from '@sinclair/typebox';
import type { IHeaders, KafkaMessage, Message } from 'kafkajs';
import type { TracingSection } from './config/tracing.js';

export type TracingOptions = Static<typeof TracingSection>;

/** Record headers that carry the trace context (W3C Trace Context). */
export const TRACE_HEADERS = ['traceparent', 'tracestate'] as const;

/** Requests that are not traced: scrapes and probes would otherwise be most of the traces. */
const UNTRACED_PATHS = /^\/(metrics|healthz|readyz)(\?|$)/;

const TRACER = 'postline';

/** Whether spans are recorded in this process (set by `initTracing`, cleared by its shutdown). */
let recording = false;

export interface Tracing {
  /** True when spans are recorded and exported. */
  readonly enabled: boolean;
  /** Exports every finished span now. */
  forceFlush(): Promise<void>;
  /** Flushes, stops exporting and unpatches HTTP; safe to call twice. Add it as the last shutdown step. */
  shutdown(): Promise<void>;
}

export interface TracingDeps {
  /** Where spans go instead of the configured exporter (tests: an InMemorySpanExporter); turns tracing on. */
  exporter?: SpanExporter;
  /** Export each span as it ends instead of in batches (tests). */
  exportEachSpan?: boolean;
}

const OFF: Tracing = { enabled: false, forceFlush: async () => undefined, shutdown: async () => undefined };

/** `a=1,b=2` → `{ a: '1', b: '2' }` (the OTEL_EXPORTER_OTLP_HEADERS form). */
export function parseHeaderList(list: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of list.split(',')) {
    const at = pair.indexOf('=');
    if (at > 0) out[pair.slice(0, at).trim()] = decodeURIComponent(pair.slice(at + 1).trim());
  }
  return out;
}

/**
 * Sets up OpenTelemetry for this process: a tracer provider for `postline-<service>` with a
 * parent-based ratio sampler, the AsyncLocalStorage context manager, the W3C propagator, the
 * OTLP/HTTP exporter and the HTTP instrumentation. Does nothing when `options.exporter` is
 * `none` (and no exporter is given): tracing is then off.
 */
export function initTracing(service: string, options: TracingOptions, deps: TracingDeps = {}): Tracing {
  const exporter =
    deps.exporter ?? (options.exporter === 'otlp' ? new OTLPTraceExporter({ url: options.otlpEndpoint, headers: parseHeaderList(options.otlpHeaders) }) : undefined);
  if (!exporter) return OFF;
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': `postline-${service}`, 'service.namespace': 'postline', 'service.instance.id': `${os.hostname()}:${process.pid}` }),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(options.sampleRatio) }),
    spanProcessors: [deps.exportEachSpan ? new SimpleSpanProcessor({ exporter }) : new BatchSpanProcessor({ exporter })],
  });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  const unregister = registerInstrumentations({
    tracerProvider: provider,
    instrumentations: [
      new HttpInstrumentation({
        ignoreIncomingRequestHook: (req) => UNTRACED_PATHS.test(req.url ?? ''),
        // Background calls (ClickHouse inserts, OTLP export) start no trace of their own.
        requireParentforOutgoingSpans: true,
      }),
    ],
  });
  // The instrumentation patches node:http when it is next required; fastify already holds the
  // module object, which is patched in place, so servers created from now on are traced.
  const require = createRequire(import.meta.url);
  require('node:http');
  require('node:https');
  recording = true;
  let stopped: Promise<void> | undefined;
  return {
    enabled: true,
    forceFlush: () => provider.forceFlush(),
    shutdown() {
      stopped ??= (async () => {
        recording = false;
        unregister();
        await provider.shutdown();
        trace.disable();
        propagation.disable();
        context.disable();
      })();
      return stopped;
    },
  };
}

const headerGetter: TextMapGetter<IHeaders> = {
  keys: (carrier) => Object.keys(carrier ?? {}),
  get(carrier, key) {
    const v = carrier?.[key];
    const first = Array.isArray(v) ? v[0] : v;
    return first === undefined ? undefined : first.toString();
  },
};

const headerSetter: TextMapSetter<IHeaders> = {
  set(carrier, key, value) {
    carrier[key] = value;
  },
};

/** The trace context a record's headers carry (the root context when they carry none). */
export function extractTraceContext(headers: IHeaders | undefined): Context {
  return propagation.extract(ROOT_CONTEXT, headers ?? {}, headerGetter);
}

/**
 * A copy of `headers` with the trace context of `ctx` (default: the active one) written into
 * `traceparent`/`tracestate`. The input is never modified (it may be a consumed record's).
 */
export function injectTraceContext(headers: IHeaders | undefined, ctx: Context = context.active()): IHeaders | undefined {
  const carrier: IHeaders = { ...headers };
  propagation.inject(ctx, carrier, headerSetter);
  return Object.keys(carrier).length > 0 ? carrier : headers;
}

function tracer() {
  return trace.getTracer(TRACER);
}

function fail(span: Span, err: unknown): void {
  span.recordException(err instanceof Error ? err : String(err));
  span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
}

export interface ProducedRecordTrace {
  /** The record to send: `message` with the producer span's context in its headers. */
  message: Message;
  /** Ends the producer span once the broker acknowledged the record (or failed to). */
  end(err?: unknown): void;
}

const untraced = (message: Message): ProducedRecordTrace => ({ message, end: () => undefined });

/**
 * Starts a `send <topic>` PRODUCER span for one record and writes its context into the record's
 * headers. The parent is the active span (the HTTP request, or the record being processed);
 * without one, the trace the record already carries (a forwarded record, e.g. a retry the
 * scheduler moves back); without either, no span: background writes start no trace.
 */
export function traceProducedRecord(topic: string, message: Message): ProducedRecordTrace {
  if (!recording) return untraced(message);
  let parent = context.active();
  if (!trace.getSpanContext(parent)) {
    parent = extractTraceContext(message.headers);
    if (!trace.getSpanContext(parent)) return untraced(message);
  }
  const span = tracer().startSpan(
    `send ${topic}`,
    {
      kind: SpanKind.PRODUCER,
      attributes: {
        'messaging.system': 'kafka',
        'messaging.operation.type': 'send',
        'messaging.operation.name': 'send',
        'messaging.destination.name': topic,
        ...(message.key != null ? { 'messaging.kafka.message.key': message.key.toString() } : {}),
      },
    },
    parent,
  );
  return {
    message: { ...message, headers: injectTraceContext(message.headers, trace.setSpan(parent, span)) },
    end(err?: unknown) {
      if (err !== undefined) fail(span, err);
      span.end();
    },
  };
}

/** What `withConsumedRecordSpan` needs of a consumed record (a StageRecord fits). */
export interface TracedRecord {
  topic: string;
  partition: number;
  message: Pick<KafkaMessage, 'headers' | 'offset' | 'key'>;
}

/**
 * Runs `work` (a stage handling one record) inside a `process <topic>` CONSUMER span whose
 * parent is the trace context in the record's headers, so everything the stage produces for
 * that record continues the same trace. A record without one starts a new trace.
 */
export function withConsumedRecordSpan<T>(record: TracedRecord, work: () => Promise<T>): Promise<T> {
  if (!recording) return work();
  const parent = extractTraceContext(record.message.headers);
  const attributes: Attributes = {
    'messaging.system': 'kafka',
    'messaging.operation.type': 'process',
    'messaging.operation.name': 'process',
    'messaging.destination.name': record.topic,
    'messaging.destination.partition.id': String(record.partition),
    'messaging.kafka.offset': Number(record.message.offset),
    ...(record.message.key != null ? { 'messaging.kafka.message.key': record.message.key.toString() } : {}),
  };
  const span = tracer().startSpan(`process ${record.topic}`, { kind: SpanKind.CONSUMER, attributes }, parent);
  return context.with(trace.setSpan(parent, span), async () => {
    try {
      return await work();
    } catch (err) {
      fail(span, err);
      throw err;
    } finally {
      span.end();
    }
  });
}

/**
 * Runs `work` in a child span of the active one: e.g. `smtp <host>` around one SMTP transaction
 * (`work` sets the reply code on the span), or a batch insert with `links` from `recordLinks`.
 */
export function withSpan<T>(
  name: string,
  attributes: Attributes,
  work: (span: Span) => Promise<T>,
  opts: { kind?: SpanKind; links?: Link[] } = {},
): Promise<T> {
  if (!recording) return work(trace.wrapSpanContext(INVALID_SPAN_CONTEXT));
  return tracer().startActiveSpan(name, { kind: opts.kind ?? SpanKind.INTERNAL, attributes, links: opts.links ?? [] }, async (span) => {
    try {
      return await work(span);
    } catch (err) {
      fail(span, err);
      throw err;
    } finally {
      span.end();
    }
  });
}

/**
 * The traces a batch of records belongs to, as span links: for work done once for many
 * records (one ClickHouse insert of a batch of events), which belongs to no single trace.
 */
export function recordLinks(records: Array<{ message: { headers?: IHeaders } }>): Link[] {
  if (!recording) return [];
  const links: Link[] = [];
  for (const r of records) {
    const sc = trace.getSpanContext(extractTraceContext(r.message.headers));
    if (sc) links.push({ context: sc });
  }
  return links;
}
