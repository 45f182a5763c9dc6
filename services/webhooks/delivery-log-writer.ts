/**
 * Writes the delivery log (`email.webhooks.deliveries`) in batches: attempts are kept per
 * endpoint for `lingerMs` (or until `MAX_ATTEMPTS_PER_LOG_RECORD` wait) and go out as one
 * record per endpoint — one encode and one produce per batch instead of per attempt, and no
 * promise per attempt. The log must not hold up deliveries: nothing here is awaited by an
 * attempt, and a record that cannot be written is logged and dropped (the log is a view for
 * people; delivery state lives on the retry tiers). Attempts still waiting when the process
 * dies are not in the log; `close()` writes what waits.
 */
import type { Logger } from 'pino';
import type { BatchingProducer } from '../../shared/kafka/batching-producer.js';
import { DeliveryAttemptBatchContract, MAX_ATTEMPTS_PER_LOG_RECORD, WEBHOOK_DELIVERIES_TOPIC, type DeliveryAttempt } from '../../shared/webhooks/delivery-job.js';

export interface DeliveryLogWriterOptions {
  producer: Pick<BatchingProducer, 'send'>;
  logger: Logger;
  /** How long an attempt waits for others of its endpoint before its record is written (default 100 ms). */
  lingerMs?: number;
}

export class DeliveryLogWriter {
  private waiting = new Map<string, DeliveryAttempt[]>();
  private timer?: NodeJS.Timeout;
  private readonly writing = new Set<Promise<unknown>>();
  private readonly lingerMs: number;

  constructor(private readonly opts: DeliveryLogWriterOptions) {
    this.lingerMs = opts.lingerMs ?? 100;
  }

  add(attempt: DeliveryAttempt): void {
    let list = this.waiting.get(attempt.endpointId);
    if (!list) this.waiting.set(attempt.endpointId, (list = []));
    list.push(attempt);
    if (list.length >= MAX_ATTEMPTS_PER_LOG_RECORD) {
      this.waiting.delete(attempt.endpointId);
      this.write(attempt.endpointId, list);
    } else {
      this.timer ??= setTimeout(() => this.flush(), this.lingerMs);
    }
  }

  /** Writes every endpoint's waiting attempts now. */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const waiting = this.waiting;
    this.waiting = new Map();
    for (const [endpointId, attempts] of waiting) this.write(endpointId, attempts);
  }

  private write(endpointId: string, attempts: DeliveryAttempt[]): void {
    const value = DeliveryAttemptBatchContract.encode({ schemaVersion: 2, endpointId, attempts });
    const p = this.opts.producer.send(WEBHOOK_DELIVERIES_TOPIC, { key: endpointId, value }).catch((err: unknown) => {
      this.opts.logger.warn({ err, endpoint: endpointId, attempts: attempts.length }, 'could not write the delivery log record');
    });
    this.writing.add(p);
    void p.finally(() => this.writing.delete(p));
  }

  /** Writes what waits and resolves once every record written is acked (or failed). */
  async close(): Promise<void> {
    this.flush();
    await Promise.all(this.writing);
  }
}
