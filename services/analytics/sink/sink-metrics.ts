/**
 * Prometheus metrics of the sink, fed by its events (the sink never imports prom-client).
 * Labels are bounded: topic, partition, reason, code.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { ClickHouseSink } from './clickhouse-sink.js';

const STAGE = 'analytics';

/** The metric `name` in `registry`, made the first time: the shared series may already exist there. */
function shared<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

/**
 * Dead letters are counted by the event publisher (`postline_dead_letters_total`, stage
 * analytics); records, lag and committed offsets use the series every stage reports.
 */
export function instrumentSink(sink: ClickHouseSink, registry: Registry): void {
  const registers = [registry];
  const insertSeconds = new Histogram({
    name: 'postline_analytics_insert_seconds',
    help: 'Duration of one successful ClickHouse insert',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers,
  });
  const batchRows = new Histogram({
    name: 'postline_analytics_batch_rows',
    help: 'Rows per ClickHouse insert',
    buckets: [1, 10, 100, 500, 1000, 2500, 5000, 10_000, 25_000, 50_000],
    registers,
  });
  const batchAge = new Histogram({
    name: 'postline_analytics_batch_age_seconds',
    help: 'How long a batch had been filling when it was taken for its insert (longer while busy: analytics.batchBusyWaitMs)',
    buckets: [0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 30],
    registers,
  });
  const rowsInserted = new Counter({ name: 'postline_analytics_rows_inserted_total', help: 'Rows inserted into the events table', registers });
  const insertFailures = new Counter({ name: 'postline_analytics_insert_failures_total', help: 'Failed ClickHouse insert attempts (each is retried)', registers });
  const skipped = new Counter({
    name: 'postline_analytics_records_skipped_total',
    help: 'Redelivered records not inserted again: held (already buffered or inserted by this process) or stored (found in ClickHouse)',
    labelNames: ['reason'],
    registers,
  });
  const buffered = new Gauge({ name: 'postline_analytics_buffered_rows', help: 'Rows in memory waiting for or in an insert', registers });
  const paused = new Gauge({ name: 'postline_analytics_backpressure_paused', help: '1 while consumption is paused because ClickHouse is behind', registers });
  const processed = shared(registry, 'postline_stage_records_processed_total', () => new Counter({ name: 'postline_stage_records_processed_total', help: 'Records a stage finished', labelNames: ['stage', 'topic'], registers }));
  const lag = shared(registry, 'postline_consumer_lag', () => new Gauge({ name: 'postline_consumer_lag', help: 'Records behind the high watermark at the end of the last batch', labelNames: ['stage', 'topic', 'partition'], registers }));
  const committed = shared(registry, 'postline_consumer_committed_offset', () => new Gauge({ name: 'postline_consumer_committed_offset', help: 'Last committed offset', labelNames: ['stage', 'topic', 'partition'], registers }));

  sink.on('inserted', (rows: number, ms: number) => {
    insertSeconds.observe(ms / 1000);
    batchRows.observe(rows);
    rowsInserted.inc(rows);
  });
  sink.on('batchAge', (ms: number) => batchAge.observe(ms / 1000));
  sink.on('insertFailed', () => insertFailures.inc());
  sink.on('skipped', (reason: string, n: number) => skipped.inc({ reason }, n));
  sink.on('buffered', (n: number) => buffered.set(n));
  sink.on('paused', () => paused.set(1));
  sink.on('resumed', () => paused.set(0));
  sink.on('processed', (topic: string, n: number) => processed.inc({ stage: STAGE, topic }, n));
  sink.on('lag', (topic: string, partition: number, n: number) => lag.set({ stage: STAGE, topic, partition: String(partition) }, n));
  sink.on('committed', (topic: string, partition: number, offset: string) => committed.set({ stage: STAGE, topic, partition: String(partition) }, Number(offset)));
  // Partitions this replica no longer owns must not keep reporting (summed lag would double).
  sink.on('rebalanced', () => {
    lag.reset();
    committed.reset();
  });
}
