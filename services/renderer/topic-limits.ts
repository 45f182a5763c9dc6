/**
 * The largest record each dispatch topic accepts, read from the broker at start-up, so the
 * renderer dead-letters a message that would not fit (MESSAGE_TOO_LARGE) instead of failing to
 * produce it forever. A broker that does not answer DescribeConfigs (in time) leaves the limit
 * Postline creates those topics with, and a warning says so.
 */
import kafkajs, { type Admin, type IHeaders } from 'kafkajs';

// kafkajs is CommonJS: its enums are properties of the default export under ESM.
const { ConfigResourceTypes } = kafkajs;
import type { Logger } from 'pino';

export interface TopicLimits {
  /** `max.message.bytes` per topic. */
  bytes: Record<string, number>;
  /** Where each limit came from. */
  source: Record<string, 'broker' | 'configured'>;
}

/**
 * Reads `max.message.bytes` of `topics`; any topic the broker does not describe keeps `fallback`.
 * Never throws: a missing answer is a warning, not a reason not to start.
 */
export async function readTopicLimits(opts: { admin: Pick<Admin, 'describeConfigs'>; topics: string[]; fallback: number; logger: Logger; timeoutMs?: number }): Promise<TopicLimits> {
  const { admin, topics, fallback, logger } = opts;
  const out: TopicLimits = { bytes: {}, source: {} };
  for (const t of topics) {
    out.bytes[t] = fallback;
    out.source[t] = 'configured';
  }
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${opts.timeoutMs ?? 5000} ms`)), opts.timeoutMs ?? 5000);
    });
    const described = await Promise.race([
      admin.describeConfigs({ includeSynonyms: false, resources: topics.map((name) => ({ type: ConfigResourceTypes.TOPIC, name, configNames: ['max.message.bytes'] })) }),
      timeout,
    ]);
    for (const r of described.resources) {
      const value = Number(r.configEntries.find((e) => e.configName === 'max.message.bytes')?.configValue);
      if (r.errorCode === 0 && topics.includes(r.resourceName) && Number.isInteger(value) && value > 0) {
        out.bytes[r.resourceName] = value;
        out.source[r.resourceName] = 'broker';
      }
    }
  } catch (err) {
    logger.warn({ err, topics, maxMessageBytes: fallback }, 'the broker did not describe the dispatch topics; assuming the max.message.bytes Postline creates them with');
  } finally {
    clearTimeout(timer);
  }
  const unread = topics.filter((t) => out.source[t] === 'configured');
  if (unread.length > 0 && unread.length < topics.length) logger.warn({ topics: unread, maxMessageBytes: fallback }, 'no max.message.bytes for these topics; assuming the configured limit');
  return out;
}

/** Record batch header (61) + record framing (varints, attributes, deltas): generous for one record. */
const BATCH_OVERHEAD = 128;

/** The size of a batch carrying only this record, as the broker compares it with `max.message.bytes`. */
export function singleRecordBatchBytes(message: { key: string | Buffer | null; value: Buffer; headers?: IHeaders }): number {
  const len = (v: unknown): number => (v === null || v === undefined ? 0 : Buffer.isBuffer(v) ? v.length : Buffer.byteLength(String(v)));
  let n = BATCH_OVERHEAD + len(message.key) + message.value.length;
  for (const [k, v] of Object.entries(message.headers ?? {})) n += 10 + Buffer.byteLength(k) + (Array.isArray(v) ? v.reduce((a: number, x) => a + len(x), 0) : len(v));
  return n;
}
