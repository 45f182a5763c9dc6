import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSince } from './command.js';

test('parseSince: spans back from now and ISO times', () => {
  const now = Date.parse('2025-03-01T12:00:00.000Z');
  const cases: Array<[string, number]> = [
    ['90s', now - 90_000],
    ['30m', now - 30 * 60_000],
    ['2h', now - 2 * 3_600_000],
    ['7d', now - 7 * 86_400_000],
    ['2025-02-28T00:00:00Z', Date.parse('2025-02-28T00:00:00Z')],
  ];
  for (const [input, expected] of cases) assert.equal(parseSince(input, now), expected, input);
  for (const bad of ['yesterday', '5', '3w', '']) assert.throws(() => parseSince(bad, now), /--since/, bad);
});
