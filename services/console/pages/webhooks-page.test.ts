/** The webhooks page's pure parts: an endpoint's health from its state and latest attempts, and the event filter from the form. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chosenTypes, endpointHealth } from './webhooks-page.js';
import { ConsoleDenied } from '../console-errors.js';

const t = (s: number) => new Date(Date.parse('2026-12-03T19:00:00Z') + s * 1000).toISOString();

test('endpoint health: disabled and why, failing with the latest answer, healthy, idle', () => {
  assert.deepEqual(endpointHealth({ enabled: false, disabledReason: 'failing' }, []), { state: 'disabled', text: 'disabled: kept failing' });
  assert.deepEqual(endpointHealth({ enabled: false, disabledReason: 'api' }, []), { state: 'disabled', text: 'disabled' });
  assert.deepEqual(endpointHealth({ enabled: true }, []), { state: 'idle', text: 'no deliveries yet' });
  assert.deepEqual(endpointHealth({ enabled: true }, [{ outcome: 'skipped', at: t(1) }]), { state: 'idle', text: 'no deliveries yet' });
  assert.deepEqual(endpointHealth({ enabled: true }, [{ outcome: 'delivered', at: t(2), status: 204 }, { outcome: 'failed', at: t(1), status: 500 }]), { state: 'healthy', text: 'delivered (204)' });
  const failing = endpointHealth({ enabled: true }, [{ outcome: 'failed', at: t(3), status: 503, nextAttemptAt: t(60) }, { outcome: 'failed', at: t(2), error: 'timeout' }, { outcome: 'delivered', at: t(1), status: 200 }]);
  assert.equal(failing.state, 'failing');
  assert.equal(failing.text, 'failing: answered 503; 2 of the last 3 attempts failed, next try 2026-12-03 19:01:00 UTC');
  assert.match(endpointHealth({ enabled: true }, [{ outcome: 'gave-up', at: t(3), error: 'connect ECONNREFUSED' }]).text, /failing: connect ECONNREFUSED/);
});

test('event filter: one, many or none (every email.* type); unknown types refused', () => {
  assert.deepEqual(chosenTypes(undefined), []);
  assert.deepEqual(chosenTypes('email.sent'), ['email.sent']);
  assert.deepEqual(chosenTypes(['email.sent', 'inbound.received', 'email.sent']), ['email.sent', 'inbound.received']);
  assert.throws(() => chosenTypes(['email.sent', 'email.nope']), (err) => err instanceof ConsoleDenied && /email\.nope/.test(err.message));
});
