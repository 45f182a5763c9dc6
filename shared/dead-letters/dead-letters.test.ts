import { test } from 'node:test';
import assert from 'node:assert/strict';
import { matches, type LetterFilter } from './dead-letters.js';

test('matches: tenant, message ids, time and code', () => {
  const l = { tenant: 'acme', messageId: 'm-1', failedAt: '2025-03-01T12:00:00.000Z', code: 'EXPIRED' };
  const at = Date.parse(l.failedAt);
  const cases: Array<[string, LetterFilter, boolean]> = [
    ['no filter', {}, true],
    ['own tenant', { tenant: 'acme' }, true],
    ['another tenant', { tenant: 'globex' }, false],
    ['one of the ids', { messageIds: ['x', 'm-1'] }, true],
    ['not among the ids', { messageIds: ['x'] }, false],
    ['failed after since', { since: at - 1 }, true],
    ['failed exactly at since', { since: at }, true],
    ['failed before since', { since: at + 1 }, false],
    ['code', { code: 'EXPIRED' }, true],
    ['other code', { code: 'VALIDATION_FAILED' }, false],
    ['all at once', { tenant: 'acme', messageIds: ['m-1'], since: at, code: 'EXPIRED' }, true],
  ];
  for (const [name, f, expected] of cases) assert.equal(matches(l, f), expected, name);
  assert.equal(matches({ ...l, tenant: undefined }, { tenant: 'acme' }), false, 'a letter without a tenant belongs to nobody');
});
