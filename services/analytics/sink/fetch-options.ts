/**
 * How the sink's consumer fetches `email.events`. The sink inserts in batches anyway (a batch
 * waits up to `analytics.batchMaxWaitMs`), so nothing gains from a fetch per handful of events:
 * each fetch asks for at least `minBytes` and the broker holds it until that much has arrived or
 * `maxWaitTimeInMs` passed. Under load that is a few fetches a second, each carrying hundreds of
 * events, where a fetch answered as soon as any event arrived made one round trip (a request,
 * its socket writes, a decode, a batch through the sink) per few events, in this process and in
 * the broker. Measured on `npm start` (README, Capacity). At rest nothing changes: a fetch
 * waited `maxWaitTimeInMs` before too.
 */
export interface SinkFetchOptions {
  minBytes: number;
  maxBytes: number;
  maxBytesPerPartition: number;
  maxWaitTimeInMs: number;
}

/** `batchMaxWaitMs`: the sink's own wait; a fetch never waits longer than half of it (at most 500 ms). */
export function sinkFetchOptions(batchMaxWaitMs: number): SinkFetchOptions {
  return {
    minBytes: 256 << 10,
    maxBytes: 16 << 20,
    maxBytesPerPartition: 2 << 20,
    maxWaitTimeInMs: Math.max(1, Math.min(500, Math.floor(batchMaxWaitMs / 2))),
  };
}
