/**
 * Dead letters as the CLI and the API see them: read from `email.dead`, summarised, chosen by
 * tenant / message id / time / code, and replayed (see `replay-record.ts` for what a replay
 * produces). A dead letter is named by its place on `email.dead` (`<partition>:<offset>`);
 * users usually pick them by message id.
 */
import type { IHeaders, Kafka, Producer } from 'kafkajs';
import { DeadLetterContract, type DeadLetter } from '../contracts/dead-letter.js';
import { Topics } from '../topics.js';
import { replayRecord, type ReplayRecord } from './replay-record.js';
import { readTopicRange } from '../kafka/topic-range.js';

export interface DeadLetterEntry {
  /** `<partition>:<offset>` on email.dead. */
  id: string;
  letter: DeadLetter;
}

/** What a list shows: never the message content. */
export interface DeadLetterSummary {
  id: string;
  messageId?: string;
  tenant?: string;
  code: string;
  reason: string;
  stage: string;
  failedAt: string;
  sourceTopic: string;
  /** Recipients of the delivery, when the record is a dispatch record. */
  recipients?: string[];
}

export interface LetterFilter {
  tenant?: string;
  /** Message ids (any of them). */
  messageIds?: string[];
  /** Failed at or after (ms). */
  since?: number;
  code?: string;
}

export function summarize(e: DeadLetterEntry): DeadLetterSummary {
  const l = e.letter;
  let recipients: string[] | undefined;
  if (l.source.value && l.source.valueEncoding === 'utf8' && l.source.topic.startsWith('email.dispatch.')) {
    try {
      const to = (JSON.parse(l.source.value) as { envelope?: { to?: unknown } }).envelope?.to;
      if (Array.isArray(to) && to.every((x) => typeof x === 'string')) recipients = to as string[];
    } catch {
      // not JSON: no recipients to show
    }
  }
  return {
    id: e.id,
    ...(l.messageId ? { messageId: l.messageId } : {}),
    ...(l.tenant ? { tenant: l.tenant } : {}),
    code: l.code,
    reason: l.reason,
    stage: l.stage,
    failedAt: l.failedAt,
    sourceTopic: l.source.topic,
    ...(recipients ? { recipients } : {}),
  };
}

/** Pure: does this dead letter match the filter. */
export function matches(l: Pick<DeadLetter, 'tenant' | 'messageId' | 'failedAt' | 'code'>, f: LetterFilter): boolean {
  if (f.tenant !== undefined && l.tenant !== f.tenant) return false;
  if (f.messageIds && !(l.messageId && f.messageIds.includes(l.messageId))) return false;
  if (f.since !== undefined && Date.parse(l.failedAt) < f.since) return false;
  if (f.code !== undefined && l.code !== f.code) return false;
  return true;
}

function decodeEntry(partition: number, offset: string, value: Buffer | null): DeadLetterEntry | undefined {
  try {
    return { id: `${partition}:${offset}`, letter: DeadLetterContract.decode(value) };
  } catch {
    return undefined; // not a dead letter (a foreign producer): nothing to show or replay
  }
}

/**
 * Reads the dead letters matching `filter` from email.dead (from `filter.since` when given,
 * found by record timestamp; else from the beginning of what is retained).
 */
export async function readDeadLetters(kafka: Kafka, filter: LetterFilter, timeoutMs = 60_000): Promise<{ entries: DeadLetterEntry[]; complete: boolean }> {
  const entries: DeadLetterEntry[] = [];
  const range = await readTopicRange(
    kafka,
    Topics.dead,
    filter.since !== undefined ? { fromTimestamp: filter.since } : {},
    (partition, m) => {
      const e = decodeEntry(partition, m.offset, m.value);
      if (e && matches(e.letter, filter)) entries.push(e);
    },
    { timeoutMs, groupPrefix: 'postline-dead-letters' },
  );
  entries.sort((a, b) => a.letter.failedAt.localeCompare(b.letter.failedAt));
  return { entries, complete: range.complete };
}

/** Reads these dead letters (ids `<partition>:<offset>`) from email.dead. */
export async function fetchDeadLetters(kafka: Kafka, ids: string[], timeoutMs = 30_000): Promise<DeadLetterEntry[]> {
  const wanted = new Set(ids);
  const first = new Map<number, bigint>();
  for (const id of wanted) {
    const [p, o] = id.split(':');
    const partition = Number(p);
    const offset = BigInt(o);
    if (!first.has(partition) || offset < first.get(partition)!) first.set(partition, offset);
  }
  const found: DeadLetterEntry[] = [];
  await readTopicRange(
    kafka,
    Topics.dead,
    { offsets: [...first].map(([partition, offset]) => ({ partition, offset: String(offset) })) },
    (partition, m, stop) => {
      const id = `${partition}:${m.offset}`;
      if (!wanted.has(id)) return;
      const e = decodeEntry(partition, m.offset, m.value);
      if (e) found.push(e);
      wanted.delete(id);
      if (wanted.size === 0) stop();
    },
    { timeoutMs, groupPrefix: 'postline-dead-letters' },
  );
  return found;
}

export interface ReplayResult {
  id: string;
  messageId?: string;
  /** Where it went, or why not. */
  topic?: string;
  kind?: ReplayRecord['kind'];
  error?: string;
}

/** Produces one record durably (acks=-1); resolves once acked. */
export type ProduceFn = (topic: string, message: { key: string | null; value: Buffer; headers: IHeaders }) => Promise<unknown>;

/** A ProduceFn over a plain kafkajs producer. */
export function produceWith(producer: Pick<Producer, 'send'>): ProduceFn {
  return (topic, message) => producer.send({ topic, acks: -1, messages: [message] });
}

/** Produces each dead letter's replay record; one that cannot be replayed is reported, not thrown. */
export async function replayDeadLetters(produce: ProduceFn, entries: DeadLetterEntry[], now = new Date()): Promise<ReplayResult[]> {
  const results: ReplayResult[] = [];
  for (const e of entries) {
    const plan = replayRecord(e.letter, now);
    const base = { id: e.id, ...(e.letter.messageId ? { messageId: e.letter.messageId } : {}) };
    if (!plan.ok) {
      results.push({ ...base, error: plan.reason });
      continue;
    }
    const { topic, key, value, headers, kind } = plan.record;
    await produce(topic, { key, value, headers });
    results.push({ ...base, topic, kind });
  }
  return results;
}
