/**
 * How the sink's consumer fetches `email.events`. The sink inserts in batches anyway (a batch
 * waits up to `analytics.batchMaxWaitMs`), so nothing gains from a fetch per handful of events:
 * its fetches are paced (shared/kafka/fetch-wake.ts) — after a fetch that brought events the next
 * waits out `paceMs` first, so under load that is a few fetches a second, each carrying hundreds
 * of events, where a fetch answered as soon as any event arrived made one round trip (a request,
 * its socket writes, a decode, a batch through the sink) per few events, in this process and in
 * the broker. A fetch asks for any event and waits the consumer's fetch wait, so at rest the
 * sink wakes every 10 s, and the first event after a quiet spell comes at once. Measured on
 * `npm start` (README, Capacity).
 */
export interface SinkFetchOptions {
  maxBytes: number;
  maxBytesPerPartition: number;
  /** The pause after a fetch that brought events (`paceFetches`). */
  paceMs: number;
}

/** `batchMaxWaitMs`: the sink's own wait; the pace is at most half of it (and 500 ms). */
export function sinkFetchOptions(batchMaxWaitMs: number): SinkFetchOptions {
  return {
    maxBytes: 16 << 20,
    maxBytesPerPartition: 2 << 20,
    paceMs: Math.max(1, Math.min(500, Math.floor(batchMaxWaitMs / 2))),
  };
}
