/** Produce: validate and append each partition's batches; answer per the requested acks. */
import { ApiKey } from '../protocol/apis.js';
import { ErrorCode } from '../protocol/error-codes.js';
import { AppendError } from '../log/partition-log.js';
import type { BrokerContext } from '../context.js';
import type { Handler } from '../server.js';
import type { Message } from '../protocol/schema.js';
import type { PartitionLog } from '../log/partition-log.js';

const MAGIC_AT = 16;

export function produceHandlers(b: BrokerContext): Array<[number, Handler]> {
  const produce: Handler = async (ctx, req) => {
    const acks: number = req.acks;
    // The partitions this request wrote (or whose unsynced write it repeats): the ack waits for their fsyncs only.
    const toSync = new Set<PartitionLog>();
    const responses = (req.topicData as Message[]).map((t) => ({
      name: t.name,
      partitionResponses: (t.partitionData as Message[]).map((p) => {
        const out = { index: p.index, errorCode: 0, baseOffset: -1, logAppendTimeMs: -1, logStartOffset: -1 };
        if (acks !== 0 && acks !== 1 && acks !== -1) return { ...out, errorCode: ErrorCode.INVALID_REQUIRED_ACKS };
        if (req.transactionalId) return { ...out, errorCode: ErrorCode.UNSUPPORTED_VERSION };
        const log = b.logs.partition(t.name, p.index);
        if (!log) return { ...out, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION };
        if (!p.records) return { ...out, errorCode: ErrorCode.CORRUPT_MESSAGE };
        // Produce v0-2 may carry message sets v0/v1 (magic at the same byte as in a v2 batch);
        // Kafka up-converts them, this broker stores record batches v2 only and says so.
        if (ctx.apiVersion < 3 && p.records.length > MAGIC_AT && p.records.readInt8(MAGIC_AT) < 2) {
          return { ...out, errorCode: ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT };
        }
        try {
          const r = log.append(p.records);
          if (!r.duplicate) {
            b.metrics.recordsIn.inc({ topic: b.metrics.topicLabel(t.name) }, countRecords(p.records));
            b.logs.markDirty(log);
            toSync.add(log);
          } else if (log.highWatermark <= r.baseOffset) {
            // A retry of a batch whose first attempt is not yet fsynced: acknowledging it now
            // would promise durability the original has not reached.
            toSync.add(log);
          }
          return { ...out, baseOffset: r.baseOffset, logStartOffset: log.logStartOffset };
        } catch (err) {
          if (!(err instanceof AppendError)) throw err;
          b.metrics.produceErrors.inc({ topic: b.metrics.topicLabel(t.name), error: err.errorName });
          b.logger.warn({ topic: t.name, partition: p.index, clientId: ctx.clientId, err: err.message }, 'produce rejected');
          return { ...out, errorCode: ErrorCode[err.errorName] };
        }
      }),
    }));
    if (acks === 0) return null;
    // acks=1 and acks=-1 are answered once the group fsync covering the write has run: only then
    // has the high watermark moved past it, so a client reading its own write right after the
    // ack (ListOffsets latest, a consumer) sees it, as with a one-replica Kafka. Concurrent
    // produces to a partition share its fsync, so this costs latency, not throughput; and only
    // the written partitions' fsyncs are awaited, not a pass over every dirty file.
    if (acks !== 0 && toSync.size > 0 && b.options.durability === 'group') await b.commit.durableFor(toSync);
    return { responses, throttleTimeMs: 0 };
  };
  return [[ApiKey.Produce, produce]];
}

/** Record count across the batches of a validated record set (header field at offset 57). */
function countRecords(records: Buffer): number {
  let n = 0;
  for (let pos = 0; pos + 61 <= records.length; pos += 12 + records.readInt32BE(pos + 8)) n += records.readInt32BE(pos + 57);
  return n;
}
