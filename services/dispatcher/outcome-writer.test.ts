import { test } from 'node:test';
import assert from 'node:assert/strict';
import { outcomeEventId } from './outcome-writer.js';

test('outcome event ids are stable: the same uuid v5 for the same outcome, across versions and recipient order', () => {
  const msg = { messageId: 'm-1', domain: 'xn--bcher-kva.example', attempt: 2 };
  // Pinned: a changed id would let analytics count a re-written outcome twice after an upgrade.
  const want = 'e3d760e9-e772-5761-b9a2-64dedeff5e2b';
  assert.equal(outcomeEventId(msg, 'sent', ['zoë@x.org', 'a@xn--bcher-kva.example']), want);
  assert.equal(outcomeEventId(msg, 'sent', ['a@xn--bcher-kva.example', 'zoë@x.org']), want);
  assert.notEqual(outcomeEventId(msg, 'deferred', ['a@xn--bcher-kva.example', 'zoë@x.org']), want);
  assert.notEqual(outcomeEventId({ ...msg, attempt: 3 }, 'sent', ['a@xn--bcher-kva.example', 'zoë@x.org']), want);
});
