import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import { SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace';
import {
  extractTraceContext,
  initTracing,
  parseHeaderList,
  recordLinks,
  traceProducedRecord,
  withConsumedRecordSpan,
  withSpan,
  type Tracing,
  type TracingOptions,
} from './tracing.js';

const OPTIONS: TracingOptions = { exporter: 'none', otlpEndpoint: 'http://127.0.0.1:1/v1/traces', otlpHeaders: '', sampleRatio: 1 };
const TRACE_ID = '0af7651916cd43dd8448eb211c80319c';
const PARENT = `00-${TRACE_ID}-b7ad6b7169203331-01`;

const traceparentOf = (headers: unknown): string => String((headers as Record<string, unknown>).traceparent);
const parentIdOf = (s: ReadableSpan): string | undefined => s.parentSpanContext?.spanId;

describe('tracing off (the default)', () => {
  it('records nothing and leaves records as they are', async () => {
    const tracing = initTracing('test', OPTIONS);
    assert.equal(tracing.enabled, false);
    const message = { key: 'k', value: 'v', headers: { traceparent: PARENT } };
    const traced = traceProducedRecord('email.requested', message);
    assert.equal(traced.message, message, 'the record is passed on untouched, forwarded trace context included');
    assert.equal(await withConsumedRecordSpan({ topic: 't', partition: 0, message: { offset: '0', key: null, headers: {} } }, async () => 42), 42);
    assert.equal(await withSpan('x', {}, async (span) => span.isRecording()), false);
  });

  it('parses OTLP header lists', () => {
    assert.deepEqual(parseHeaderList('api-key=abc, x-team=mail%20ops,broken'), { 'api-key': 'abc', 'x-team': 'mail ops' });
    assert.deepEqual(parseHeaderList(''), {});
  });
});

describe('tracing on', () => {
  const exporter = new InMemorySpanExporter();
  let tracing: Tracing;
  const spans = (name?: string): ReadableSpan[] => exporter.getFinishedSpans().filter((s) => !name || s.name === name);

  before(() => {
    tracing = initTracing('test', OPTIONS, { exporter, exportEachSpan: true });
  });
  after(() => tracing.shutdown());

  it('gives a produced record a child span of the active one and its context in the headers', async () => {
    exporter.reset();
    const original = { tracestate: 'vendor=1' };
    await withSpan('request', {}, async (request) => {
      const traced = traceProducedRecord('email.requested', { key: 'm1', value: 'v', headers: original });
      traced.end();
      const sent = spans('send email.requested')[0];
      assert.equal(sent.kind, SpanKind.PRODUCER);
      assert.equal(sent.spanContext().traceId, request.spanContext().traceId);
      assert.equal(parentIdOf(sent), request.spanContext().spanId);
      assert.equal(sent.attributes['messaging.destination.name'], 'email.requested');
      assert.equal(sent.attributes['messaging.kafka.message.key'], 'm1');
      assert.equal(traceparentOf(traced.message.headers), `00-${sent.spanContext().traceId}-${sent.spanContext().spanId}-01`);
    });
    assert.deepEqual(original, { tracestate: 'vendor=1' }, 'the caller’s headers object is not modified');
  });

  it('continues the trace a forwarded record carries when no span is active', () => {
    exporter.reset();
    const traced = traceProducedRecord('email.dispatch.bulk', { value: 'v', headers: { traceparent: Buffer.from(PARENT) } });
    traced.end();
    const sent = spans('send email.dispatch.bulk')[0];
    assert.equal(sent.spanContext().traceId, TRACE_ID);
    assert.equal(parentIdOf(sent), 'b7ad6b7169203331');
    assert.match(traceparentOf(traced.message.headers), new RegExp(`^00-${TRACE_ID}-${sent.spanContext().spanId}-01$`));
  });

  it('starts no trace for a background write without any context', () => {
    exporter.reset();
    const message = { key: 'tenant:addr', value: 'v' };
    const traced = traceProducedRecord('email.suppressions', message);
    traced.end();
    assert.equal(traced.message, message);
    assert.equal(spans().length, 0);
  });

  it('processes a consumed record in a consumer span parented by its headers, and what it produces continues the trace', async () => {
    exporter.reset();
    const record = { topic: 'email.requested', partition: 3, message: { offset: '17', key: Buffer.from('m1'), headers: { traceparent: Buffer.from(PARENT) } } };
    let produced: ReturnType<typeof traceProducedRecord> | undefined;
    await withConsumedRecordSpan(record, async () => {
      produced = traceProducedRecord('email.dispatch.transactional', { value: 'v' });
      produced.end();
    });
    const processed = spans('process email.requested')[0];
    assert.equal(processed.kind, SpanKind.CONSUMER);
    assert.equal(processed.spanContext().traceId, TRACE_ID);
    assert.equal(parentIdOf(processed), 'b7ad6b7169203331');
    assert.equal(processed.attributes['messaging.kafka.offset'], 17);
    assert.equal(processed.attributes['messaging.destination.partition.id'], '3');
    const sent = spans('send email.dispatch.transactional')[0];
    assert.equal(parentIdOf(sent), processed.spanContext().spanId);
    const carried = trace.getSpanContext(extractTraceContext(produced!.message.headers));
    assert.equal(carried?.spanId, sent.spanContext().spanId);
  });

  it('marks a failed handler’s span as an error and rethrows', async () => {
    exporter.reset();
    await assert.rejects(
      withConsumedRecordSpan({ topic: 'email.events', partition: 0, message: { offset: '1', key: null, headers: {} } }, async () => {
        throw new Error('ClickHouse unavailable');
      }),
      /ClickHouse unavailable/,
    );
    const [span] = spans('process email.events');
    assert.equal(span.status.code, SpanStatusCode.ERROR);
    assert.equal(parentIdOf(span), undefined, 'a record without trace context starts a trace');
  });

  it('keeps a "not sampled" decision: nothing recorded, the decision still propagated', async () => {
    exporter.reset();
    const unsampled = `00-${TRACE_ID}-b7ad6b7169203331-00`;
    let headers: unknown;
    await withConsumedRecordSpan({ topic: 'email.requested', partition: 0, message: { offset: '0', key: null, headers: { traceparent: unsampled } } }, async () => {
      headers = traceProducedRecord('email.events', { value: 'v' }).message.headers;
    });
    assert.equal(spans().length, 0);
    assert.match(traceparentOf(headers), new RegExp(`^00-${TRACE_ID}-[0-9a-f]{16}-00$`));
  });

  it('links a batch to the traces of its records', async () => {
    exporter.reset();
    const links = recordLinks([{ message: { headers: { traceparent: PARENT } } }, { message: { headers: {} } }]);
    assert.deepEqual(
      links.map((l) => l.context.spanId),
      ['b7ad6b7169203331'],
    );
    await withSpan('clickhouse insert', { 'db.system': 'clickhouse' }, async () => undefined, { kind: SpanKind.CLIENT, links });
    const [insert] = spans('clickhouse insert');
    assert.equal(insert.kind, SpanKind.CLIENT);
    assert.equal(insert.links[0].context.traceId, TRACE_ID, 'the insert is linked to the event’s trace');
  });

  it('traces HTTP requests (continuing a caller’s traceparent) but not probes and scrapes', async () => {
    exporter.reset();
    const app = Fastify();
    let inside: string | undefined;
    app.post('/v1/emails', async () => {
      inside = trace.getSpan(context.active())?.spanContext().traceId;
      return { ok: true };
    });
    app.get('/healthz', async () => ({ status: 'ok' }));
    const address = await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      await (await fetch(`${address}/v1/emails`, { method: 'POST', headers: { traceparent: PARENT } })).text();
      await (await fetch(`${address}/healthz`)).text();
      await tracing.forceFlush();
      const server = await waitForSpan(() => spans().find((s) => s.kind === SpanKind.SERVER));
      assert.equal(server.spanContext().traceId, TRACE_ID);
      assert.equal(inside, TRACE_ID, 'the handler runs inside the request span');
      assert.equal(spans().filter((s) => s.kind === SpanKind.SERVER).length, 1, '/healthz is not traced');
    } finally {
      await app.close();
    }
  });
});

/** The server span ends when the response has been written, a moment after the client read it. */
async function waitForSpan(find: () => ReadableSpan | undefined): Promise<ReadableSpan> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const s = find();
    if (s) return s;
    if (Date.now() > deadline) throw new Error('no server span');
    await new Promise((r) => setTimeout(r, 10));
  }
}
