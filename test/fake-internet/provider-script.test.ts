/**
 * The provider answers as pure decisions, on a hand-driven clock: throttle windows per source,
 * greylisting with a minimum delay, unknown users, blocklists, TLS required, connection limits.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BLOCKED, GREYLISTED, ProviderPolicy, THROTTLED, TLS_REQUIRED, TOO_MANY_CONNECTIONS, UNKNOWN_USER, type ProviderScript } from '../helpers/fake-internet/provider-script.js';

function clocked(script: ProviderScript, tlsRequired = false): { policy: ProviderPolicy; at: (ms: number) => void } {
  let now = 1_000_000;
  return { policy: new ProviderPolicy(script, tlsRequired, () => now), at: (ms) => void (now = 1_000_000 + ms) };
}

test('throttle: N accepted transactions per source per window, then 421 4.7.28 until the oldest leaves the window', () => {
  const { policy, at } = clocked({ throttleAfterPerMinute: 2 });
  const steps: [number, string, string | undefined][] = [
    [0, '127.0.0.2', undefined],
    [10_000, '127.0.0.2', undefined],
    [20_000, '127.0.0.2', THROTTLED.message],
    [20_000, '127.0.0.3', undefined],
    [59_999, '127.0.0.2', THROTTLED.message],
    [60_001, '127.0.0.2', undefined],
    [60_002, '127.0.0.2', THROTTLED.message],
    [70_001, '127.0.0.2', undefined],
  ];
  for (const [ms, peer, expected] of steps) {
    at(ms);
    assert.equal(policy.mail(peer, true)?.message, expected, `MAIL from ${peer} at ${ms} ms`);
  }
  assert.equal(THROTTLED.code, 421);
  assert.match(THROTTLED.message, /^4\.7\.28 /);
});

test('greylisting per (source, sender, recipient) with a minimum delay; unknown users first', () => {
  const { policy, at } = clocked({ greylist: true, greylistMinDelayMs: 300_000, unknownUsers: ['Gone@t.test'] });
  const table: [number, string, string, string, string | undefined][] = [
    [0, '127.0.0.2', 'a@s.test', 'x@t.test', GREYLISTED.message],
    [60_000, '127.0.0.2', 'A@s.test', 'X@t.test', GREYLISTED.message], // too early; case does not make it new
    [300_000, '127.0.0.2', 'a@s.test', 'x@t.test', undefined],
    [300_000, '127.0.0.3', 'a@s.test', 'x@t.test', GREYLISTED.message],
    [300_000, '127.0.0.2', 'b@s.test', 'x@t.test', GREYLISTED.message],
    [300_000, '127.0.0.2', 'a@s.test', 'gone@t.test', UNKNOWN_USER.message],
  ];
  for (const [ms, peer, from, rcpt, expected] of table) {
    at(ms);
    assert.equal(policy.rcpt(peer, from, rcpt)?.message, expected, `${peer} ${from} → ${rcpt} at ${ms} ms`);
  }
});

test('blocklist at MAIL FROM or the greeting, TLS required, connections per source, a custom recipient rule', () => {
  const mail = new ProviderPolicy({ blockSources: ['127.0.0.4'] }, true);
  assert.equal(mail.mail('127.0.0.2', false), TLS_REQUIRED);
  assert.equal(mail.mail('127.0.0.4', true), BLOCKED);
  assert.equal(mail.mail('127.0.0.2', true), undefined);
  assert.equal(mail.connect('127.0.0.4', 1), undefined);

  const greeting = new ProviderPolicy({ blockSources: ['127.0.0.4'], blockAt: 'connect', maxConnectionsPerSource: 2 }, false);
  assert.equal(greeting.connect('127.0.0.4', 1), BLOCKED);
  assert.equal(greeting.connect('127.0.0.2', 2), undefined);
  assert.equal(greeting.connect('127.0.0.2', 3), TOO_MANY_CONNECTIONS);

  const custom = new ProviderPolicy({ rcpt: (rcpt) => (rcpt.startsWith('full') ? { code: 452, message: '4.2.2 Mailbox full' } : undefined), unknownUsers: ['full@t.test'] }, false);
  assert.deepEqual(custom.rcpt('127.0.0.2', 'a@s.test', 'full@t.test'), { code: 452, message: '4.2.2 Mailbox full' });
  assert.equal(custom.rcpt('127.0.0.2', 'a@s.test', 'ok@t.test'), undefined);
});
