import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseSmtpReply } from '../smtp-outcome.js';
import { throttleReason, type ThrottleReason } from './throttle-replies.js';

/** Replies as providers send them (addresses and ids changed), and what they mean here. */
const TABLE: Array<[string, ThrottleReason | undefined]> = [
  // Google
  ['421 4.7.28 [192.0.2.7] Our system has detected an unusual rate of unsolicited mail originating from your IP address. To protect our users from spam, mail sent from your IP address has been temporarily rate limited. Please visit https://support.google.com/mail/?p=UnsolicitedRateLimitError to review our Bulk Email Senders Guidelines. x1si1234.123 - gsmtp', 'gmail-rate'],
  ['421 4.7.0 Try again later, closing connection. (EHLO) x1si1234.123 - gsmtp', 'try-again-later'],
  ['450 4.2.1 The user you are trying to contact is receiving mail at a rate that prevents additional messages from being delivered. Please resend your message at a later time. x1si1234.123 - gsmtp', undefined],
  ['452 4.2.2 The email account that you tried to reach is over quota. Please direct the recipient to https://support.google.com/mail/?p=OverQuotaTemp x1si1234.123 - gsmtp', undefined],
  ['550 5.7.28 [192.0.2.7] Our system has detected an unusual rate of unsolicited mail originating from your IP address. gsmtp', undefined],
  // Microsoft (outlook.com, Office 365)
  ['451 4.7.500 Server busy. Please try again later from [192.0.2.7]. (S77719) [Name=Protocol Filter Agent][AGT=PFA][MxId=11BB]', 'microsoft'],
  ['451 4.7.650 The mail server [192.0.2.7] has been temporarily rate limited due to IP reputation. For e-mail delivery information, see https://aka.ms/postmaster (S775) [BN1NAM02FT012.eop-nam02.prod.protection.outlook.com]', 'microsoft'],
  ["421 RP-001 (BAY004-MC1F15) Unfortunately, some messages from 192.0.2.7 weren't sent. Please try again. We have limits for how many messages can be sent per hour and per day.", 'microsoft'],
  ['421 4.3.2 The maximum number of concurrent server connections has exceeded a limit, closing transmission channel', 'rate-limit'],
  ['452 4.3.1 Insufficient system resources (TooManyMessagesInQueue)', undefined],
  ['450 4.7.0 Message throttled due to too many messages from this sender', 'rate-limit'],
  // Yahoo / AOL
  ['421 4.7.0 [TSS04] Messages from 192.0.2.7 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes', 'yahoo'],
  ['421 4.7.0 [TS01] Messages from 192.0.2.7 temporarily deferred due to user complaints - 4.16.55.1; see https://help.yahoo.com/kb/postmaster/SLN3434.html', 'yahoo'],
  ['421 4.7.0 [TS02] Messages from 192.0.2.7 temporarily deferred due to user complaints - 4.16.55.1; see https://help.yahoo.com/kb/postmaster/SLN3434.html', 'yahoo'],
  ['421 4.7.1 [TS03] All messages from 192.0.2.7 will be permanently deferred; Retrying will NOT succeed. See https://help.yahoo.com/kb/postmaster/SLN3434.html', 'yahoo'],
  ['554 5.7.9 Message not accepted for policy reasons.  See https://postmaster.yahooinc.com/error-codes', undefined],
  // Apple iCloud
  ['450 4.7.1 Error: too much mail from 192.0.2.7', 'rate-limit'],
  ['421 4.7.0 Too many concurrent SMTP connections from this IP address; please try again later.', 'rate-limit'],
  // Generic
  ['421 mx.example.net Service not available, closing transmission channel', '421'],
  ['451 4.7.1 Please try again later', 'try-again-later'],
  ['451 4.7.1 Service unavailable - try again later', 'try-again-later'],
  ['450 4.7.25 Client host rejected: cannot find your hostname', '4.7.x'],
  ['451 4.7.1 Greylisting in action, please come back later', undefined],
  ['451 4.7.1 Greylisted: the mail server is temporarily rejecting this message, try again later.', undefined],
  ['450 4.2.0 <bob@example.net>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/example.net.html', undefined],
  ['451 4.3.0 Temporary lookup failure', undefined],
  ['452 4.5.3 Too many recipients', undefined],
  ['550 5.1.1 The email account that you tried to reach does not exist.', undefined],
  ['250 2.0.0 OK  1700000000 x1si1234.123 - gsmtp', undefined],
];

describe('throttleReason', () => {
  for (const [line, expected] of TABLE) {
    it(`${expected ?? 'not throttling'}: ${line.slice(0, 70)}`, () => {
      const r = parseSmtpReply(line);
      assert.equal(throttleReason({ code: r.code, enhanced: r.enhanced, text: r.text }), expected);
    });
  }

  it('reads a connection error without a code only by its words', () => {
    assert.equal(throttleReason({ text: 'Too many connections from your IP' }), 'rate-limit');
    assert.equal(throttleReason({ text: 'connect ECONNREFUSED 127.0.0.20:25' }), undefined);
    assert.equal(throttleReason({ text: 'Greeting never received' }), undefined);
  });

  it('finds an enhanced code in the text when it was not parsed apart', () => {
    assert.equal(throttleReason({ code: 421, text: '4.7.28 unsolicited mail' }), 'gmail-rate');
  });
});
