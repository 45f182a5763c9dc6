/**
 * Broker metrics on a caller-supplied prom-client registry. The broker core emits events; this
 * module is the only place that knows about Prometheus.
 *
 * Topic names are chosen by clients, so they are bounded as labels: a topic gets its own label
 * only while it exists and while fewer than `maxTopics` topics have one; everything else counts
 * under `(other)` (parentheses cannot occur in a topic name). A deleted topic's series go with it.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { LogManager } from './log/log-manager.js';
import type { GroupCoordinator } from './groups/group-coordinator.js';

/** The label for topics past the cap (not a legal topic name, so it never collides with one). */
export const OTHER_TOPIC = '(other)';

/** Hands out topic labels: existing topics, at most `max` of them at a time. */
export class TopicLabels {
  private labelled = new Set<string>();

  constructor(
    private readonly max: number,
    private readonly exists: (topic: string) => boolean,
  ) {}

  of(topic: string): string {
    if (this.labelled.has(topic)) return topic;
    if (this.labelled.size >= this.max || !this.exists(topic)) return OTHER_TOPIC;
    this.labelled.add(topic);
    return topic;
  }

  forget(topic: string): void {
    this.labelled.delete(topic);
  }
}

export interface BrokerMetrics {
  /** The label to use for `topic` (see TopicLabels). */
  topicLabel(topic: string): string;
  /** Drops a deleted topic's series and frees its label. */
  forgetTopic(topic: string): Promise<void>;
  requests: Counter<'api'>;
  requestSeconds: Histogram<'api'>;
  bytesIn: Counter;
  bytesOut: Counter;
  recordsIn: Counter<'topic'>;
  produceErrors: Counter<'topic' | 'error'>;
  fsyncSeconds: Histogram;
  connectionErrors: Counter;
}

export function createBrokerMetrics(registry: Registry, logs: () => LogManager, groups: () => GroupCoordinator, maxTopics: number): BrokerMetrics {
  const registers = [registry];
  const labels = new TopicLabels(maxTopics, (topic) => logs().get(topic) !== undefined);
  new Gauge({
    name: 'postline_broker_log_end_offset',
    help: `Log end offset per partition (the first ${maxTopics} topics by label)`,
    labelNames: ['topic', 'partition'],
    registers,
    collect() {
      this.reset();
      for (const p of logs().allPartitions()) {
        const topic = labels.of(p.topic);
        if (topic !== OTHER_TOPIC) this.set({ topic, partition: String(p.partition) }, p.logEndOffset);
      }
    },
  });
  new Gauge({
    name: 'postline_broker_log_size_bytes',
    help: `Bytes on disk per partition; topics past the first ${maxTopics} summed as topic="${OTHER_TOPIC}", partition="all"`,
    labelNames: ['topic', 'partition'],
    registers,
    collect() {
      this.reset();
      for (const p of logs().allPartitions()) {
        const topic = labels.of(p.topic);
        if (topic !== OTHER_TOPIC) this.set({ topic, partition: String(p.partition) }, p.sizeBytes);
        else this.inc({ topic, partition: 'all' }, p.sizeBytes);
      }
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
  const recordsIn = new Counter({ name: 'postline_broker_records_in_total', help: 'Records appended', labelNames: ['topic'], registers });
  const produceErrors = new Counter({ name: 'postline_broker_produce_errors_total', help: 'Rejected produce partitions', labelNames: ['topic', 'error'], registers });
  return {
    topicLabel: (topic) => labels.of(topic),
    async forgetTopic(topic) {
      labels.forget(topic);
      for (const counter of [recordsIn, produceErrors] as Array<Counter<string>>) {
        for (const v of (await counter.get()).values) if (v.labels.topic === topic) counter.remove(v.labels as Record<string, string>);
      }
    },
    recordsIn,
    produceErrors,
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
    fsyncSeconds: new Histogram({
      name: 'postline_broker_fsync_seconds',
      help: 'Duration of one group-commit fsync of a partition log or of the state journal (writes that arrive meanwhile share the next)',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5],
      registers,
    }),
    connectionErrors: new Counter({ name: 'postline_broker_connection_errors_total', help: 'Connections closed for malformed input', registers }),
  };
}
