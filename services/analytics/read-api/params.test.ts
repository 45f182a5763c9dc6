import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BadParameterError, decodeCursor, encodeCursor, parseInterval, searchParams, statsParams } from './params.js';

const NOW = Date.parse('2024-05-10T12:00:00Z');
const DAY = 86_400_000;
const limits = { maxPoints: 1500, maxSpanMs: 400 * DAY };

function rejects(f: () => unknown, parameter: string, message?: RegExp): void {
  assert.throws(f, (err: unknown) => {
    assert.ok(err instanceof BadParameterError, String(err));
    assert.equal(err.parameter, parameter);
    if (message) assert.match(err.message, message);
    return true;
  });
}

test('parseInterval: minutes, hours and days in whole minutes', () => {
  const cases: Array<[string, number | null]> = [
    ['1m', 1], ['15m', 15], ['1h', 60], ['6h', 360], ['1d', 1440], ['7d', 10080],
    ['0m', null], ['1s', null], ['m', null], ['1.5h', null], ['-1h', null], ['1H', null], ['123456m', null],
  ];
  for (const [v, want] of cases) assert.equal(parseInterval(v), want, v);
});

test('statsParams: defaults to the last day with the finest interval that fits', () => {
  const p = statsParams({}, NOW, limits);
  assert.deepEqual(p, { from: NOW - DAY, to: NOW, intervalMinutes: 1, interval: '1m' });
  const month = statsParams({ from: '2024-04-10T12:00:00Z', to: '2024-05-10T12:00:00Z' }, NOW, limits);
  assert.equal(month.interval, '30m', '30 days at 30 min = 1440 buckets');
  assert.equal(statsParams({ groupBy: 'tag', interval: '1h' }, NOW, limits).groupBy, 'tag');
  assert.equal(statsParams({ from: '2024-05-10T10:00:00+02:00', to: '2024-05-10T09:00:00Z' }, NOW, limits).from, Date.parse('2024-05-10T08:00:00Z'));
});

test('statsParams: a range too large for the interval is refused with the interval that would fit', () => {
  rejects(() => statsParams({ from: '2024-04-10T12:00:00Z', to: '2024-05-10T12:00:00Z', interval: '1m' }, NOW, limits), 'interval', /time range too large for interval 1m: 30 d makes 43200 buckets, at most 1500 are allowed; use interval=30m/);
  assert.equal(statsParams({ from: '2024-05-09T12:00:00Z', to: '2024-05-10T12:00:00Z', interval: '1m' }, NOW, limits).intervalMinutes, 1);
});

test('statsParams and searchParams: each bad value names its parameter', () => {
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ interval: 'hourly' }, 'interval'],
    [{ groupBy: 'recipient' }, 'groupBy'],
    [{ from: '2024-05-01' }, 'from'],
    [{ from: '2024-05-01T00:00:00' }, 'from'], // no zone: which instant?
    [{ to: 'now' }, 'to'],
    [{ from: '2024-05-10T00:00:00Z', to: '2024-05-09T00:00:00Z' }, 'from'],
    [{ interval: ['1h', '1d'] }, 'interval'],
  ];
  for (const [q, parameter] of cases) rejects(() => statsParams(q, NOW, limits), parameter);
  const search: Array<[Record<string, unknown>, string]> = [
    [{ limit: '0' }, 'limit'], [{ limit: '201' }, 'limit'], [{ limit: '1.5' }, 'limit'],
    [{ status: 'delivered' }, 'status'], [{ recipient: '' }, 'recipient'], [{ tag: 'a\nb' }, 'tag'],
    [{ cursor: 'nope' }, 'cursor'], [{ cursor: encodeCursor({ acceptedAtMs: 1, messageId: 'x' }).slice(0, 5) }, 'cursor'],
    [{ from: '2024-01-01T00:00:00Z' }, 'from'],
  ];
  for (const [q, parameter] of search) rejects(() => searchParams(q, NOW, { maxSpanMs: 31 * DAY, defaultSpanMs: 7 * DAY }), parameter);
});

test('searchParams: defaults and a cursor round trip', () => {
  const p = searchParams({}, NOW, { maxSpanMs: 31 * DAY, defaultSpanMs: 7 * DAY });
  assert.deepEqual(p, { from: NOW - 7 * DAY, to: NOW, limit: 50 });
  const cursor = { acceptedAtMs: 1_715_000_000_123, messageId: 'msg-9' };
  assert.deepEqual(decodeCursor(encodeCursor(cursor)), cursor);
  const q = searchParams({ cursor: encodeCursor(cursor), status: 'bounced', tag: 'x', recipient: 'a@b.c', limit: '10' }, NOW, { maxSpanMs: 31 * DAY, defaultSpanMs: 7 * DAY });
  assert.deepEqual([q.cursor, q.status, q.tag, q.recipient, q.limit], [cursor, 'bounced', 'x', 'a@b.c', 10]);
});
