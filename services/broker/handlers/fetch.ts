/**
 * Fetch with long-polling: if less than `minBytes` is available, wait until enough has arrived
 * (or, once anything has, at most FETCH_LINGER_MS more), `maxWaitMs` passes, a later request
 * arrives on the same connection (its answer would otherwise wait behind this one), a group
 * member of the same client id has to rejoin its group, or the broker shuts down. Waiting is
 * event-driven (no polling) and per request, so one consumer's long-poll never delays another
 * connection.
 */
import { ApiKey } from '../protocol/apis.js';
import { ErrorCode } from '../protocol/error-codes.js';
import type { BrokerContext } from '../context.js';
import type { Handler, RequestContext } from '../server.js';
import type { Message } from '../protocol/schema.js';
import type { PartitionLog } from '../log/partition-log.js';
import { SetMap } from '../set-map.js';

interface PartitionFetch {
  topic: string;
  partition: number;
  fetchOffset: number;
  maxBytes: number;
  log?: PartitionLog;
}

/**
 * Looks every partition up again: a long-poll may outlive its topic (deleted meanwhile), and a
 * deleted log's file handles may already belong to other files.
 */
function resolve(b: BrokerContext, wanted: PartitionFetch[]): void {
  for (const w of wanted) w.log = b.logs.partition(w.topic, w.partition);
}

function collect(wanted: PartitionFetch[], maxBytes: number): { responses: Message[]; bytes: number; errors: boolean } {
  const byTopic = new Map<string, Message[]>();
  let bytes = 0;
  let errors = false;
  for (const w of wanted) {
    const part: Message = { partitionIndex: w.partition, errorCode: 0, highWatermark: -1, lastStableOffset: -1, logStartOffset: -1, abortedTransactions: null, records: null };
    if (!w.log) {
      part.errorCode = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
      errors = true;
    } else {
      part.highWatermark = w.log.highWatermark;
      part.lastStableOffset = w.log.highWatermark;
      part.logStartOffset = w.log.logStartOffset;
      // The response-wide limit applies after the first non-empty partition, like Kafka's.
      const budget = bytes === 0 ? w.maxBytes : Math.min(w.maxBytes, maxBytes - bytes);
      if (budget > 0 || bytes === 0) {
        const r = w.log.read(w.fetchOffset, Math.max(budget, 1));
        if (r.error) {
          part.errorCode = ErrorCode.OFFSET_OUT_OF_RANGE;
          errors = true;
        } else {
          part.records = r.records;
          bytes += r.bytes;
        }
      }
    }
    const list = byTopic.get(w.topic) ?? [];
    list.push(part);
    byTopic.set(w.topic, list);
  }
  return { responses: [...byTopic].map(([topic, partitions]) => ({ topic, partitions })), bytes, errors };
}

/**
 * Waits until `enough()` after a high-watermark move, `ms` passed, the broker stops, or a later
 * request arrives on the same connection (resolves true then).
 *
 * A move is looked at in the next check phase, not at once: the high watermark moves when an
 * fsync completes, and the produce requests that fsync acknowledges are answered in the same
 * turn. Their acks go out first — they are what a producer (ingest's 202, the gateway's 250) is
 * waiting for, while a woken fetch only carries the records onwards. Both reach a client that
 * reads both (`npm start`'s stages process) in the order written, and it handles each in turn.
 */
function waitForData(logs: PartitionLog[], ms: number, shutdown: AbortSignal, ctx: RequestContext, rejoin: RejoinWaits, enough: () => boolean): Promise<boolean> {
  return new Promise((resolve) => {
    const offs: Array<() => void> = [];
    let immediate: NodeJS.Immediate | undefined;
    const done = (cut: boolean): void => {
      clearTimeout(timer);
      if (immediate) clearImmediate(immediate);
      shutdown.removeEventListener('abort', wake);
      for (const off of offs) off();
      resolve(cut);
    };
    const wake = (): void => done(false);
    let closed = false;
    const moved = (logClosed: boolean): void => {
      closed ||= logClosed;
      immediate ??= setImmediate(() => {
        immediate = undefined;
        if (closed || enough()) wake();
      });
    };
    const timer = setTimeout(wake, ms);
    shutdown.addEventListener('abort', wake);
    for (const log of logs) offs.push(log.onHighWatermark(moved));
    offs.push(ctx.onLaterRequest(() => done(true)));
    const rejoined = (): void => done(true);
    rejoin.add(ctx.clientId, rejoined);
    offs.push(() => rejoin.delete(ctx.clientId, rejoined));
  });
}

/** The waiting fetches by client id, ended when a group member of that client has to rejoin. */
type RejoinWaits = SetMap<string, () => void>;

/**
 * Longest a fetch asking for more bytes than there are (`minBytes`) waits once some records are
 * there: Kafka would hold it for its whole `maxWait`. So a reader that wants its records in
 * batches (the followers of `email.events`, the analytics sink: 64 KiB and more) can wait long
 * when nothing comes — an idle install wakes it rarely — and still gets a lone record within
 * half a second. A client sees a partial answer before its wait ran out, as Kafka gives when a
 * fetch hits its byte limit; every client handles that.
 */
export const FETCH_LINGER_MS = 500;

/**
 * Longest a fetch waits while its connection's group member has a rebalance to rejoin. kafkajs
 * heartbeats after a fetch only once its heartbeat interval (3 s) has passed since the last, so
 * a member woken early by a rebalance may fetch a few times before it hears of it.
 */
export const REJOIN_FETCH_WAIT_MS = 500;

function unsupported(req: Message): Message {
  return {
    throttleTimeMs: 0,
    errorCode: 0,
    sessionId: 0,
    responses: (req.topics as Message[]).map((t) => ({
      topic: t.topic,
      partitions: (t.partitions as Message[]).map((p) => ({ partitionIndex: p.partition, errorCode: ErrorCode.UNSUPPORTED_VERSION, highWatermark: -1, records: null })),
    })),
  };
}

export function fetchHandlers(b: BrokerContext): Array<[number, Handler]> {
  // A group member that must rejoin stops waiting (group-coordinator.ts).
  const rejoin: RejoinWaits = new SetMap();
  b.groups.on('rejoinNeeded', (clientId: string) => {
    for (const end of rejoin.values(clientId)) end();
  });
  const fetch: Handler = async (ctx, req) => {
    // Fetch v0-3 clients read only message sets v0/v1, which would mean converting every batch;
    // Kafka with message.downconversion.enable=false answers them UNSUPPORTED_VERSION, and so do we.
    if (ctx.apiVersion < 4) return unsupported(req);
    const wanted: PartitionFetch[] = [];
    for (const t of req.topics as Message[]) {
      for (const p of t.partitions as Message[]) {
        wanted.push({ topic: t.topic, partition: p.partition, fetchOffset: p.fetchOffset, maxBytes: p.partitionMaxBytes });
      }
    }
    // A member with a rebalance to rejoin hears of it only from the heartbeat its client sends
    // between fetches (group-coordinator.ts): it is not kept waiting long.
    const maxWaitMs = b.groups.awaitingRejoin(ctx.clientId) ? Math.min(req.maxWaitMs, REJOIN_FETCH_WAIT_MS) : req.maxWaitMs;
    let deadline = Date.now() + Math.max(0, maxWaitMs);
    let lingering = false;
    for (;;) {
      resolve(b, wanted);
      const result = collect(wanted, req.maxBytes);
      if (!lingering && result.bytes > 0) {
        // Some records, fewer bytes than asked for: at most FETCH_LINGER_MS after the first of them
        // became readable (it may have waited for this fetch: the client was busy or pacing).
        lingering = true;
        const since = Math.min(...wanted.map((w) => w.log?.readableSince(w.fetchOffset) ?? Infinity));
        deadline = Math.min(deadline, (since === Infinity ? Date.now() : since) + FETCH_LINGER_MS);
      }
      const remaining = deadline - Date.now();
      const satisfied = req.minBytes <= 0 || result.bytes >= req.minBytes;
      if (satisfied || result.errors || remaining <= 0 || b.shutdown.aborted) {
        return { throttleTimeMs: 0, errorCode: 0, sessionId: 0, responses: result.responses };
      }
      // Until at least minBytes could be read, a move of a high watermark is not worth a read: a
      // fetch asking for much (the analytics sink, followers of email.events) waits without
      // re-reading what it already saw each time one more record is appended.
      const logs = wanted.map((w) => w.log).filter((l): l is PartitionLog => l !== undefined);
      const seen = logs.map((l) => l.exposedBytes);
      // The first record to arrive starts the linger (the loop sets the shorter deadline).
      const enough = (): boolean => {
        const bytes = result.bytes + logs.reduce((n, l, i) => n + (l.exposedBytes - seen[i]), 0);
        return bytes >= req.minBytes || (!lingering && bytes > 0);
      };
      const cut = await waitForData(logs, remaining, b.shutdown, ctx, rejoin, enough);
      if (cut) {
        resolve(b, wanted);
        return { throttleTimeMs: 0, errorCode: 0, sessionId: 0, responses: collect(wanted, req.maxBytes).responses };
      }
    }
  };
  return [[ApiKey.Fetch, fetch]];
}
