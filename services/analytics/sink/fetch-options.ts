/**
 * How the sink's consumer fetches `email.events`. The sink inserts in batches anyway (a batch
 * waits up to `analytics.batchMaxWaitMs`), so nothing gains from a fetch per handful of events:
 * it is a `follower` (shared/kafka/client.ts) asking for 256 KiB per fetch, answered when that
 * much has arrived, within 500 ms of the first event on the Postline broker, or after
 * `kafka.followerMaxWaitMs`; and its fetches are paced — after a fetch that brought events the
 * next waits out `paceMs` first. Under load that is a few fetches a second, each carrying hundreds
 * of events, where a fetch answered as soon as any event arrived made one round trip (a request,
 * its socket writes, a decode, a batch through the sink) per few events, in this process and in
 * the broker. Measured on `npm start` (README, Capacity).
 */
export interface SinkFetchOptions {
  minBytes: number;
  maxBytes: number;
  maxBytesPerPartition: number;
  /** The pause after a fetch that brought events (`paceFetches`). */
  paceMs: number;
}

/** `batchMaxWaitMs`: the sink's own wait; the pace is at most half of it (and 500 ms). */
export function sinkFetchOptions(batchMaxWaitMs: number): SinkFetchOptions {
  return {
    minBytes: 256 << 10,
    maxBytes: 16 << 20,
    maxBytesPerPartition: 2 << 20,
    paceMs: Math.max(1, Math.min(500, Math.floor(batchMaxWaitMs / 2))),
  };
}
