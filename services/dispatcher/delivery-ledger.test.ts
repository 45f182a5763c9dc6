import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeliveryLedger, splitRecipients } from './delivery-ledger.js';

test('recipients split by what is known about this attempt', () => {
  const ledger = new DeliveryLedger<string>(100);
  ledger.complete('m1', 1, ['a@x.org']);
  ledger.pending('m1', 1, ['b@x.org', 'c@x.org'], 'sent, event not acked');
  ledger.complete('m1', 2, ['d@x.org']);
  ledger.complete('m2', 1, ['d@x.org']);

  const cases: Array<[string, string, number, string[], { done: string[]; pending: Array<[string, string[]]>; todo: string[] }]> = [
    ['a repeat of the same attempt', 'm1', 1, ['a@x.org', 'b@x.org', 'c@x.org', 'd@x.org'], { done: ['a@x.org'], pending: [['sent, event not acked', ['b@x.org', 'c@x.org']]], todo: ['d@x.org'] }],
    ['the next attempt (a retry) is new work', 'm1', 3, ['a@x.org'], { done: [], pending: [], todo: ['a@x.org'] }],
    ['another message to the same recipient is new work', 'm3', 1, ['a@x.org'], { done: [], pending: [], todo: ['a@x.org'] }],
    ['addresses compare case-insensitively', 'm1', 1, ['A@X.org'], { done: ['A@X.org'], pending: [], todo: [] }],
  ];
  for (const [name, id, attempt, to, expected] of cases) {
    const got = splitRecipients(ledger, id, attempt, to);
    assert.deepEqual({ done: got.done, pending: [...got.pending], todo: got.todo }, expected, name);
  }
});

test('a pending outcome that becomes durable is complete', () => {
  const ledger = new DeliveryLedger<string>(100);
  ledger.pending('m1', 1, ['a@x.org'], 'p');
  ledger.complete('m1', 1, ['a@x.org']);
  assert.deepEqual(ledger.get('m1', 1, 'a@x.org'), { state: 'complete' });
});

test('bounded: the oldest entries are forgotten first', () => {
  const ledger = new DeliveryLedger<string>(3);
  for (let i = 1; i <= 4; i++) ledger.complete(`m${i}`, 1, ['a@x.org']);
  assert.equal(ledger.size, 3);
  assert.equal(ledger.get('m1', 1, 'a@x.org'), undefined);
  assert.ok(ledger.get('m4', 1, 'a@x.org'));
  ledger.complete('m2', 1, ['a@x.org']); // refreshed: now the newest
  ledger.complete('m5', 1, ['a@x.org']);
  assert.ok(ledger.get('m2', 1, 'a@x.org'));
  assert.equal(ledger.get('m3', 1, 'a@x.org'), undefined);
});

test('maxEntries 0 remembers nothing', () => {
  const ledger = new DeliveryLedger<string>(0);
  ledger.complete('m1', 1, ['a@x.org']);
  assert.equal(ledger.enabled, false);
  assert.equal(ledger.size, 0);
  assert.deepEqual(splitRecipients(ledger, 'm1', 1, ['a@x.org']).todo, ['a@x.org']);
});

test('a recipient the message was delivered to is done for every attempt of it; what this attempt knows comes first', () => {
  const ledger = new DeliveryLedger<string>(100);
  // Attempt 1 was sent after a crash lost its `deferred` event; the deferral's retry (attempt 2) comes next.
  ledger.complete('m1', 1, ['a@x.org'], true);
  ledger.pending('m1', 3, ['a@x.org'], 'verdict of attempt 3, not recorded yet');
  const got = (attempt: number, to: string[]) => {
    const s = splitRecipients(ledger, 'm1', attempt, to);
    return { done: s.done, pending: [...s.pending], todo: s.todo };
  };
  assert.deepEqual(got(2, ['A@x.org', 'b@x.org']), { done: ['A@x.org'], pending: [], todo: ['b@x.org'] });
  assert.deepEqual(got(3, ['a@x.org']), { done: [], pending: [['verdict of attempt 3, not recorded yet', ['a@x.org']]], todo: [] });
  // Another message to the same recipient is new work.
  assert.deepEqual(splitRecipients(ledger, 'm2', 2, ['a@x.org']).todo, ['a@x.org']);
});
