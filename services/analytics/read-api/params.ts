/**
 * Query parameters of the read API, parsed and checked. Pure: each function returns the typed
 * parameters or throws a `BadParameterError` naming the parameter, which the API answers with
 * 400. Nothing here reaches SQL as text: values travel as ClickHouse query parameters, and
 * identifiers (the `groupBy` column) come from a fixed table.
 */
import { ValidationError } from '../../../shared/errors.js';
import { MESSAGE_STATES } from '../../../shared/message-states.js';

export class BadParameterError extends ValidationError {
  constructor(
    readonly parameter: string,
    message: string,
  ) {
    super([{ path: parameter, message }]);
  }
}

export type Query = Record<string, unknown>;

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** RFC 3339 date-time (a zone is required, so a time means one instant). */
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/i;

/** Delivery states a message (recipient) can be in (one list: `shared/message-states.ts`). */
export const STATES = MESSAGE_STATES;
export const GROUP_BY = ['domain', 'priority', 'tag', 'pool', 'site', 'source', 'category', 'class', 'via', 'fromDomain', 'engagement', 'first'] as const;
export type GroupBy = (typeof GROUP_BY)[number];
/** Intervals offered when none is given, finest first. */
export const STANDARD_INTERVALS = ['1m', '5m', '15m', '30m', '1h', '3h', '6h', '12h', '1d', '7d'];

function single(q: Query, name: string): string | undefined {
  const v = q[name];
  if (v === undefined) return undefined;
  if (Array.isArray(v)) throw new BadParameterError(name, `${name} may be given once`);
  if (typeof v !== 'string') throw new BadParameterError(name, `${name} must be a string`);
  return v;
}

function text(q: Query, name: string, maxLength: number): string | undefined {
  const v = single(q, name);
  if (v === undefined) return undefined;
  if (v.length === 0 || v.length > maxLength) throw new BadParameterError(name, `${name} must be 1 to ${maxLength} characters`);
  if (/[\u0000-\u001f]/.test(v)) throw new BadParameterError(name, `${name} must not contain control characters`);
  return v;
}

function time(q: Query, name: string): number | undefined {
  const v = single(q, name);
  if (v === undefined) return undefined;
  const ms = DATE_TIME.test(v) ? Date.parse(v) : Number.NaN;
  if (Number.isNaN(ms)) throw new BadParameterError(name, `${name} must be an RFC 3339 date-time with a zone, e.g. 2024-05-01T12:00:00Z (got "${v.slice(0, 40)}")`);
  return ms;
}

/** A [from, to) window: defaults to the `defaultSpanMs` before now, at most `maxSpanMs` wide. */
export function timeRange(q: Query, now: number, defaultSpanMs: number, maxSpanMs: number): { from: number; to: number } {
  const to = time(q, 'to') ?? now;
  const from = time(q, 'from') ?? to - defaultSpanMs;
  if (from >= to) throw new BadParameterError('from', 'from must be before to');
  if (to - from > maxSpanMs) throw new BadParameterError('from', `from..to spans ${formatSpan(to - from)}; at most ${formatSpan(maxSpanMs)} is allowed`);
  return { from, to };
}

function formatSpan(ms: number): string {
  if (ms % DAY === 0) return `${ms / DAY} d`;
  if (ms >= DAY) return `${(ms / DAY).toFixed(1)} d`;
  if (ms >= HOUR) return `${(ms / HOUR).toFixed(1)} h`;
  return `${Math.ceil(ms / MINUTE)} min`;
}

function oneOf<T extends string>(q: Query, name: string, allowed: readonly T[]): T | undefined {
  const v = single(q, name);
  if (v === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(v)) throw new BadParameterError(name, `${name} must be one of ${allowed.join(', ')} (got "${v.slice(0, 40)}")`);
  return v as T;
}

/** An interval like `5m`, `1h`, `1d`, in whole minutes. */
export function parseInterval(v: string): number | null {
  const m = /^([1-9]\d{0,4})([mhd])$/.exec(v);
  if (!m) return null;
  return Number(m[1]) * { m: 1, h: 60, d: 1440 }[m[2] as 'm' | 'h' | 'd'];
}

export interface StatsParams {
  from: number;
  to: number;
  /** Bucket width in minutes, and as given (or chosen). */
  intervalMinutes: number;
  interval: string;
  groupBy?: GroupBy;
}

export function statsParams(q: Query, now: number, limits: { maxPoints: number; maxSpanMs: number }): StatsParams {
  const { from, to } = timeRange(q, now, DAY, limits.maxSpanMs);
  const groupBy = oneOf(q, 'groupBy', GROUP_BY);
  const given = single(q, 'interval');
  const buckets = (minutes: number): number => Math.ceil((to - from) / (minutes * MINUTE));
  if (given === undefined) {
    const chosen = STANDARD_INTERVALS.find((i) => buckets(parseInterval(i)!) <= limits.maxPoints) ?? '7d';
    return { from, to, intervalMinutes: parseInterval(chosen)!, interval: chosen, ...(groupBy ? { groupBy } : {}) };
  }
  const minutes = parseInterval(given);
  if (minutes === null) throw new BadParameterError('interval', `interval must be a number of minutes, hours or days such as 5m, 1h or 1d (got "${given.slice(0, 40)}")`);
  if (buckets(minutes) > limits.maxPoints) {
    const fits = STANDARD_INTERVALS.find((i) => buckets(parseInterval(i)!) <= limits.maxPoints);
    throw new BadParameterError(
      'interval',
      `time range too large for interval ${given}: ${formatSpan(to - from)} makes ${buckets(minutes)} buckets, at most ${limits.maxPoints} are allowed; use interval=${fits ?? '7d'} or a shorter range`,
    );
  }
  return { from, to, intervalMinutes: minutes, interval: given, ...(groupBy ? { groupBy } : {}) };
}

export interface SearchParams {
  from: number;
  to: number;
  recipient?: string;
  status?: (typeof STATES)[number];
  tag?: string;
  limit: number;
  cursor?: Cursor;
}

/** Where the previous page ended: its last message's acceptance time and id. */
export interface Cursor {
  acceptedAtMs: number;
  messageId: string;
}

export function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify([c.acceptedAtMs, c.messageId])).toString('base64url');
}

export function decodeCursor(v: string): Cursor {
  try {
    const [acceptedAtMs, messageId] = JSON.parse(Buffer.from(v, 'base64url').toString('utf8')) as unknown[];
    if (Number.isSafeInteger(acceptedAtMs) && typeof messageId === 'string' && messageId.length > 0) return { acceptedAtMs: acceptedAtMs as number, messageId };
  } catch {
    // fall through
  }
  throw new BadParameterError('cursor', 'cursor is not one this API returned');
}

export function searchParams(q: Query, now: number, limits: { maxSpanMs: number; defaultSpanMs: number }): SearchParams {
  const { from, to } = timeRange(q, now, limits.defaultSpanMs, limits.maxSpanMs);
  const limitText = single(q, 'limit');
  const limit = limitText === undefined ? 50 : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > 200) throw new BadParameterError('limit', 'limit must be an integer from 1 to 200');
  const recipient = text(q, 'recipient', 320);
  const tag = text(q, 'tag', 200);
  const status = oneOf(q, 'status', STATES);
  const cursorText = single(q, 'cursor');
  return {
    from,
    to,
    limit,
    ...(recipient ? { recipient } : {}),
    ...(status ? { status } : {}),
    ...(tag ? { tag } : {}),
    ...(cursorText !== undefined ? { cursor: decodeCursor(cursorText) } : {}),
  };
}

/** A message id from the path. */
export function messageIdParam(v: unknown): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > 128 || /[\u0000-\u001f]/.test(v)) throw new BadParameterError('id', 'id must be 1 to 128 printable characters');
  return v;
}
