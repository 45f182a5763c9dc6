/**
 * Broker metrics on a caller-supplied prom-client registry. The broker core emits events; this
 * module is the only place that knows about Prometheus.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { LogManager } from './log/log-manager.js';
import type { GroupCoordinator } from './groups/group-coordinator.js';

export interface BrokerMetrics {
  requests: Counter<'api'>;
  requestSeconds: Histogram<'api'>;
  bytesIn: Counter;
  bytesOut: Counter;
  recordsIn: Counter<'topic'>;
  produceErrors: Counter<'topic' | 'error'>;
  fsyncSeconds: Histogram;
  connectionErrors: Counter;
}

export function createBrokerMetrics(registry: Registry, logs: () => LogManager, groups: () => GroupCoordinator): BrokerMetrics {
  const registers = [registry];
  new Gauge({
    name: 'postline_broker_log_end_offset',
    help: 'Log end offset per partition',
    labelNames: ['topic', 'partition'],
    registers,
    collect() {
      this.reset();
      for (const p of logs().allPartitions()) this.set({ topic: p.topic, partition: String(p.partition) }, p.logEndOffset);
    },
  });
  new Gauge({
    name: 'postline_broker_log_size_bytes',
    help: 'Bytes on disk per partition',
    labelNames: ['topic', 'partition'],
    registers,
    collect() {
      this.reset();
      for (const p of logs().allPartitions()) this.set({ topic: p.topic, partition: String(p.partition) }, p.sizeBytes);
    },
  });
  new Gauge({
    name: 'postline_broker_groups',
    help: 'Consumer groups by state',
    labelNames: ['state'],
    registers,
    collect() {
      this.reset();
      const counts = new Map<string, number>();
      for (const g of groups().groups.values()) counts.set(g.state, (counts.get(g.state) ?? 0) + 1);
      for (const [state, n] of counts) this.set({ state }, n);
    },
  });
  return {
    requests: new Counter({ name: 'postline_broker_requests_total', help: 'Requests by API', labelNames: ['api'], registers }),
    requestSeconds: new Histogram({
      name: 'postline_broker_request_seconds',
      help: 'Request handling time by API (Fetch includes long-poll waits)',
      labelNames: ['api'],
      buckets: [0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5],
      registers,
    }),
    bytesIn: new Counter({ name: 'postline_broker_bytes_in_total', help: 'Request bytes received', registers }),
    bytesOut: new Counter({ name: 'postline_broker_bytes_out_total', help: 'Response bytes sent', registers }),
    recordsIn: new Counter({ name: 'postline_broker_records_in_total', help: 'Records appended', labelNames: ['topic'], registers }),
    produceErrors: new Counter({ name: 'postline_broker_produce_errors_total', help: 'Rejected produce partitions', labelNames: ['topic', 'error'], registers }),
    fsyncSeconds: new Histogram({
      name: 'postline_broker_fsync_seconds',
      help: 'Duration of one group-commit fsync pass',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5],
      registers,
    }),
    connectionErrors: new Counter({ name: 'postline_broker_connection_errors_total', help: 'Connections closed for malformed input', registers }),
  };
}
