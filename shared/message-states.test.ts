import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EVENT_TYPES, TERMINAL_EVENTS } from './contracts/email-event.js';
import { MESSAGE_STATES, MESSAGE_STATES_SQL, STATUS_PRECEDENCE, isMessageState } from './message-states.js';

test('message states: event types of the contract, every terminal event among them, one SQL tuple', () => {
  for (const s of MESSAGE_STATES) assert.ok((EVENT_TYPES as readonly string[]).includes(s), s);
  for (const t of TERMINAL_EVENTS) assert.ok(isMessageState(t), t);
  assert.deepEqual([...STATUS_PRECEDENCE, 'sent'].sort(), [...MESSAGE_STATES].sort());
  assert.equal(MESSAGE_STATES_SQL, "('accepted','scheduled','rendered','deferred','sent','bounced','expired','failed','suppressed','cancelled')");
  assert.equal(isMessageState('opened'), false);
});
