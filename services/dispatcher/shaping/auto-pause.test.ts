import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseSmtpReply } from '../smtp-outcome.js';
import { AutoPause, isRecipientClassBounce } from './auto-pause.js';

const BOUNCES: Array<[string, boolean]> = [
  ["550 5.1.1 The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos or unnecessary spaces. gsmtp", true],
  ['550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup', true],
  ['554 5.1.1 <nobody@yahoo.com>: Recipient address rejected: User unknown', true],
  ['550 5.2.1 The email account that you tried to reach is disabled. gsmtp', true],
  ['550 5.1.2 We weren\'t able to find the recipient domain.', true],
  ['550 No such user here', true],
  ['550 Requested action not taken: mailbox unavailable', true],
  ['553 5.1.3 The recipient address <bob@@example.net> is not a valid RFC 5321 address. gsmtp', true],
  ['552 5.2.2 The email account that you tried to reach is over quota.', false],
  ['550 5.7.1 Service unavailable, Client host [192.0.2.7] blocked using Spamhaus', false],
  ['550 5.7.1 Recipient address rejected: Access denied. AS(201806281)', false],
  ['554 5.7.1 [TS03] All messages from 192.0.2.7 will be permanently deferred', false],
  ['550 5.1.7 The sender address is invalid', false],
  ['552 5.3.4 Message size exceeds fixed maximum message size', false],
  ['550 5.7.26 This mail is unauthenticated, which poses a security risk to the sender and Gmail users', false],
  ['450 4.1.1 <bob@example.net>: Recipient address rejected: unverified address', false],
  ['550 5.5.0 Requested action not taken: mailbox unavailable', true],
];

describe('isRecipientClassBounce', () => {
  for (const [line, expected] of BOUNCES) {
    it(`${expected ? 'recipient' : 'not recipient'}: ${line.slice(0, 70)}`, () => {
      const r = parseSmtpReply(line);
      assert.equal(isRecipientClassBounce(r.code, r.enhanced, r.text), expected);
    });
  }
});

const O = { windowMs: 60_000, minSample: 20, threshold: 0.1, cooldownMs: 300_000 };

describe('AutoPause', () => {
  it('pauses a key whose recipient-bounce rate passes the threshold, once the sample is large enough', () => {
    const p = new AutoPause(O);
    for (let i = 0; i < 5; i++) assert.equal(p.record('a', 'recipient-bounce', 0), undefined, 'too few to judge');
    for (let i = 0; i < 14; i++) p.record('a', 'sent', 1);
    assert.equal(p.paused('a', 2), false);
    const t = p.record('a', 'sent', 2); // 20 outcomes, 5 recipient bounces: 25 %
    assert.deepEqual(t, { key: 'a', paused: true, rate: 0.25, sample: 20, until: 300_002, reason: 'bounce-rate' });
    assert.equal(p.paused('a', 3), true);
    assert.equal(p.paused('b', 3), false);
  });

  it('does not count other bounces toward the rate (but in the sample)', () => {
    const p = new AutoPause(O);
    for (let i = 0; i < 50; i++) assert.equal(p.record('a', 'bounced', i), undefined);
    assert.deepEqual(p.stats('a', 50), { rate: 0, sample: 50 });
  });

  it('forgets outcomes older than the window', () => {
    const p = new AutoPause(O);
    for (let i = 0; i < 5; i++) p.record('a', 'recipient-bounce', 0);
    for (let i = 0; i < 100; i++) assert.equal(p.record('a', 'sent', 70_000 + i), undefined);
    assert.equal(p.stats('a', 70_100).rate, 0);
  });

  it('resumes after the cool-down with a fresh window, or at once by command', () => {
    const p = new AutoPause(O);
    for (let i = 0; i < 20; i++) p.record('a', 'recipient-bounce', 0);
    for (let i = 0; i < 20; i++) p.record('b', 'recipient-bounce', 10);
    assert.deepEqual(p.pausedKeys(), [{ key: 'a', until: 300_000 }, { key: 'b', until: 300_010 }]);
    assert.equal(p.nextDue(), 300_000);
    assert.deepEqual(p.due(299_999), []);
    assert.deepEqual(p.due(300_000), [{ key: 'a', paused: false, reason: 'cooldown' }]);
    assert.equal(p.paused('a', 300_000), false);
    assert.equal(p.stats('a', 300_000).sample, 0);
    assert.deepEqual(p.resume('b'), { key: 'b', paused: false, reason: 'command' });
    assert.equal(p.resume('b'), undefined, 'not paused any more');
    assert.equal(p.nextDue(), undefined);
  });
});
