import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyFailure, isBrokenConnection, isProtocolViolation, outcomesOf, parseSmtpReply, refusalVerdict, type SmtpFailure } from './smtp-outcome.js';

test('parseSmtpReply splits code, enhanced code and text', () => {
  const cases: Array<[string, ReturnType<typeof parseSmtpReply>]> = [
    ['250 2.0.0 OK: queued as ABC', { code: 250, enhanced: '2.0.0', text: 'OK: queued as ABC' }],
    ['550 5.1.1 <x@y>: No such user', { code: 550, enhanced: '5.1.1', text: '<x@y>: No such user' }],
    ['451 Try again later', { code: 451, text: 'Try again later' }],
    ['250-first line\n250 2.0.0 last line', { code: 250, enhanced: '2.0.0', text: 'last line' }],
    ['421', { code: 421, text: '' }],
    ['garbage', { text: 'garbage' }],
  ];
  for (const [input, expected] of cases) assert.deepEqual(parseSmtpReply(input), expected, input);
});

test('classifyFailure: 5xx about the message bounces, everything else that may pass later is deferred', () => {
  const reply = (responseCode: number, command: string, text = 'x'): SmtpFailure => ({
    message: 'failed',
    code: 'EENVELOPE',
    responseCode,
    response: `${responseCode} ${responseCode >= 500 ? '5' : '4'}.0.0 ${text}`,
    command,
  });
  const cases: Array<[string, SmtpFailure, string, string]> = [
    ['550 at RCPT', reply(550, 'RCPT TO'), 'bounced', 'SMTP_PERMANENT'],
    ['552 after DATA', { ...reply(552, 'DATA'), code: 'EMESSAGE' }, 'bounced', 'SMTP_PERMANENT'],
    ['553 at MAIL FROM', reply(553, 'MAIL FROM'), 'bounced', 'SMTP_PERMANENT'],
    ['451 at RCPT', reply(451, 'RCPT TO'), 'deferred', 'SMTP_TRANSIENT'],
    ['452 after DATA', reply(452, 'DATA'), 'deferred', 'SMTP_TRANSIENT'],
    ['421 at RCPT', reply(421, 'RCPT TO'), 'deferred', 'SMTP_SERVICE_UNAVAILABLE'],
    ['503 bad sequence (our session, not the message)', reply(503, 'DATA'), 'deferred', 'SMTP_TRANSIENT'],
    ['554 greeting (not about the message)', { ...reply(554, 'CONN'), code: 'EPROTOCOL' }, 'deferred', 'SMTP_SESSION_REFUSED'],
    ['535 auth (our credentials)', { ...reply(535, 'AUTH PLAIN'), code: 'EAUTH' }, 'deferred', 'SMTP_SESSION_REFUSED'],
    ['421 greeting', { ...reply(421, 'CONN'), code: 'EPROTOCOL' }, 'deferred', 'SMTP_SERVICE_UNAVAILABLE'],
    ['greeting timeout', { message: 'Greeting never received', code: 'ETIMEDOUT', timeoutType: 'GREETING_TIMEOUT' }, 'deferred', 'SMTP_GREETING_TIMEOUT'],
    ['connect timeout', { message: 'Connection timeout', code: 'ETIMEDOUT', timeoutType: 'CONNECT_TIMEOUT' }, 'deferred', 'SMTP_CONNECT_TIMEOUT'],
    ['socket timeout (stalled DATA)', { message: 'Timeout', code: 'ETIMEDOUT', timeoutType: 'SOCKET_TIMEOUT' }, 'deferred', 'SMTP_TIMEOUT'],
    ['connection refused', { message: 'connect ECONNREFUSED', code: 'ESOCKET', originalCode: 'ECONNREFUSED' }, 'deferred', 'SMTP_CONNECTION'],
    ['connection reset', { message: 'read ECONNRESET', code: 'ESOCKET', originalCode: 'ECONNRESET' }, 'deferred', 'SMTP_CONNECTION'],
    ['dropped mid-DATA', { message: 'Connection closed unexpectedly', code: 'ECONNECTION' }, 'deferred', 'SMTP_CONNECTION'],
    ['DNS failure', { message: 'getaddrinfo ENOTFOUND', code: 'EDNS' }, 'deferred', 'SMTP_DNS'],
    ['TLS failure', { message: 'Error initiating TLS', code: 'ETLS' }, 'deferred', 'SMTP_TLS'],
    ['fleet busy', { message: 'no connection became free', code: 'FLEET_BUSY' }, 'deferred', 'FLEET_BUSY'],
    ['breaker open on every host of the route', { message: 'circuit breaker for relay:25 is open', code: 'BREAKER_OPEN' }, 'deferred', 'SMTP_BREAKER_OPEN'],
    ['unknown error', { message: 'something odd' }, 'deferred', 'SMTP_UNKNOWN'],
    ['invalid envelope address', { message: 'Invalid recipient "a\\nb"', code: 'EENVELOPE', command: 'API' }, 'failed', 'INVALID_ENVELOPE'],
    ['no recipients', { message: 'No recipients defined', code: 'EENVELOPE', command: 'API' }, 'failed', 'INVALID_ENVELOPE'],
    ['empty message', { message: 'Empty message', code: 'EMESSAGE', command: 'API' }, 'failed', 'MESSAGE_REFUSED_LOCALLY'],
    ['over the SIZE limit', { message: 'Message size larger than allowed 1000', code: 'EMESSAGE', command: 'MAIL FROM' }, 'failed', 'MESSAGE_REFUSED_LOCALLY'],
    ['REQUIRETLS not offered', { message: 'Server does not support REQUIRETLS', code: 'EREQUIRETLS', command: 'MAIL FROM' }, 'failed', 'REQUIRETLS_UNAVAILABLE'],
    // Protocol errors of the other side are its fault, and may pass: deferred, never failed.
    ['reply without a code to RCPT', { message: 'Recipient command failed: sure thing', code: 'EENVELOPE', response: 'sure thing', command: 'RCPT TO' }, 'deferred', 'SMTP_PROTOCOL'],
    ['reply without a code to MAIL FROM', { message: 'Mail command failed: ok ok', code: 'EENVELOPE', response: 'ok ok', command: 'MAIL FROM' }, 'deferred', 'SMTP_PROTOCOL'],
    ['reply without a code after DATA', { message: 'Message failed: thanks!', code: 'EMESSAGE', response: 'thanks!', command: 'DATA' }, 'deferred', 'SMTP_PROTOCOL'],
    ['empty reply to RCPT', { message: 'Recipient command failed', code: 'EENVELOPE', command: 'RCPT TO' }, 'deferred', 'SMTP_PROTOCOL'],
    ['empty reply after DATA', { message: 'Message failed', code: 'EMESSAGE', command: 'DATA' }, 'deferred', 'SMTP_PROTOCOL'],
    ['354 to RCPT (a code that makes no sense there)', { ...reply(354, 'RCPT TO'), response: '354 go ahead' }, 'deferred', 'SMTP_PROTOCOL'],
    ['250 to the DATA command', { ...reply(250, 'DATA'), response: '250 ok' }, 'deferred', 'SMTP_PROTOCOL'],
    ['999 after DATA', { ...reply(999, 'DATA'), code: 'EMESSAGE', response: '999 what' }, 'deferred', 'SMTP_PROTOCOL'],
    ['garbage to RSET', { message: 'Could not reset session state', code: 'EPROTOCOL', response: '??', command: 'RSET' }, 'deferred', 'SMTP_PROTOCOL'],
    ['reset mid-DATA', { message: 'read ECONNRESET', code: 'ESOCKET', originalCode: 'ECONNRESET', command: 'DATA' }, 'deferred', 'SMTP_CONNECTION'],
    ['server closed the connection after DATA', { message: 'Connection closed unexpectedly', code: 'ECONNECTION', command: 'CONN' }, 'deferred', 'SMTP_CONNECTION'],
  ];
  for (const [name, err, kind, code] of cases) {
    const v = classifyFailure(err);
    assert.equal(v.kind, kind, name);
    assert.equal(v.code, code, name);
    assert.ok(v.reason.length > 0, name);
  }
});

test('classifyFailure keeps code, enhanced code and text of the reply', () => {
  const v = classifyFailure({ message: 'x', code: 'EENVELOPE', responseCode: 550, response: '550 5.1.1 No such user', command: 'RCPT TO' });
  assert.deepEqual(v.reply, { code: 550, enhanced: '5.1.1', text: 'No such user' });
  assert.match(v.reason, /550 5\.1\.1 No such user/);
});

test('isProtocolViolation: the server answered something that is not a usable reply', () => {
  const cases: Array<[string, SmtpFailure, boolean]> = [
    ['text without a code', { message: 'x', code: 'EENVELOPE', response: 'hello', command: 'RCPT TO' }, true],
    ['354 to RCPT', { message: 'x', code: 'EENVELOPE', responseCode: 354, response: '354 go', command: 'RCPT TO' }, true],
    ['999', { message: 'x', code: 'EMESSAGE', responseCode: 999, response: '999 ?', command: 'DATA' }, true],
    ['451 is a reply', { message: 'x', code: 'EENVELOPE', responseCode: 451, response: '451 later', command: 'RCPT TO' }, false],
    ['550 is a reply', { message: 'x', code: 'EENVELOPE', responseCode: 550, response: '550 no', command: 'RCPT TO' }, false],
    ['a local refusal has no response', { message: 'Invalid recipient', code: 'EENVELOPE', command: 'API' }, false],
    ['a broken connection has no response', { message: 'closed', code: 'ECONNECTION', command: 'CONN' }, false],
  ];
  for (const [name, err, expected] of cases) assert.equal(isProtocolViolation(err), expected, name);
});

test('isBrokenConnection: only a connection that died without a reply', () => {
  assert.equal(isBrokenConnection({ message: 'closed', code: 'ECONNECTION' }), true);
  assert.equal(isBrokenConnection({ message: 'reset', code: 'ESOCKET' }), true);
  assert.equal(isBrokenConnection({ message: 'x', code: 'ECONNECTION', responseCode: 421, response: '421 bye' }), false);
  assert.equal(isBrokenConnection({ message: 'Timeout', code: 'ETIMEDOUT' }), false);
  assert.equal(isBrokenConnection({ message: 'x', code: 'EENVELOPE', responseCode: 451 }), false);
});

const info = (over: object) => ({ accepted: [], rejected: [], envelopeTime: 1, messageTime: 1, messageSize: 10, response: '250 2.0.0 OK', ...over });
const rcptErr = (recipient: string, code: number): SmtpFailure => ({ message: 'Recipient command failed', code: 'EENVELOPE', responseCode: code, response: `${code} x`, command: 'RCPT TO', recipient });

test('outcomesOf: every recipient gets exactly one outcome', () => {
  const cases: Array<[string, string[], Parameters<typeof outcomesOf>[1], Record<string, string[]>]> = [
    ['all accepted', ['a@x', 'b@x'], { info: info({ accepted: ['a@x', 'b@x'] }) }, { sent: ['a@x', 'b@x'] }],
    [
      'partly refused',
      ['a@x', 'b@x', 'c@x'],
      { info: info({ accepted: ['a@x'], rejected: ['b@x', 'c@x'], rejectedErrors: [rcptErr('b@x', 550), rcptErr('c@x', 451)] }) },
      { sent: ['a@x'], bounced: ['b@x'], deferred: ['c@x'] },
    ],
    [
      'all refused, mixed codes',
      ['a@x', 'b@x'],
      { error: { message: 'all rejected', code: 'EENVELOPE', responseCode: 451, response: '451 x', command: 'RCPT TO', rejectedErrors: [rcptErr('a@x', 550), rcptErr('b@x', 451)] } },
      { bounced: ['a@x'], deferred: ['b@x'] },
    ],
    ['connection dropped', ['a@x', 'b@x'], { error: { message: 'closed', code: 'ECONNECTION' } }, { deferred: ['a@x', 'b@x'] }],
    [
      'garbage to one pipelined RCPT',
      ['a@x', 'b@x'],
      { info: info({ accepted: ['a@x'], rejected: ['b@x'], rejectedErrors: [{ message: 'Recipient command failed: eh?', code: 'EENVELOPE', response: 'eh?', command: 'RCPT TO', recipient: 'b@x' }] }) },
      { sent: ['a@x'], deferred: ['b@x'] },
    ],
    ['garbage after DATA', ['a@x'], { error: { message: 'Message failed: thanks', code: 'EMESSAGE', response: 'thanks', command: 'DATA' } }, { deferred: ['a@x'] }],
    ['message refused after DATA', ['a@x'], { error: { message: 'Message failed', code: 'EMESSAGE', responseCode: 554, response: '554 5.7.1 spam', command: 'DATA' } }, { bounced: ['a@x'] }],
    ['recipient missing from a 250', ['a@x', 'b@x'], { info: info({ accepted: ['a@x'] }) }, { sent: ['a@x'], deferred: ['b@x'] }],
  ];
  for (const [name, to, result, expected] of cases) {
    const got: Record<string, string[]> = {};
    for (const o of outcomesOf(to, result)) got[o.kind] = [...(got[o.kind] ?? []), ...o.recipients].sort();
    assert.deepEqual(got, expected, name);
  }
});

test('outcomesOf: a sent outcome carries the server reply', () => {
  const [o] = outcomesOf(['a@x'], { info: info({ accepted: ['a@x'], response: '250 2.0.0 Ok: queued as 4F2' }) });
  assert.equal(o.kind, 'sent');
  assert.deepEqual(o.reply, { code: 250, enhanced: '2.0.0', text: 'Ok: queued as 4F2' });
});

test('bounced and deferred verdicts carry the rule table category and class; failures without a reply get one from the error', () => {
  const cases: Array<[string, SmtpFailure, string, string, string]> = [
    ['unknown user', { message: 'x', code: 'EENVELOPE', responseCode: 550, response: '550 5.1.1 <a@x>: Recipient address rejected: User unknown', command: 'RCPT TO' }, 'bounced', 'unknown-user', 'recipient'],
    ['spam after DATA', { message: 'x', code: 'EMESSAGE', responseCode: 554, response: '554 5.7.1 Message content rejected, UBE', command: 'DATA' }, 'bounced', 'spam', 'content'],
    ['greylisted', { message: 'x', code: 'EENVELOPE', responseCode: 451, response: '451 4.7.1 Greylisted, try again in 300 seconds', command: 'RCPT TO' }, 'deferred', 'greylisted', 'infrastructure'],
    ['5xx to EHLO (deferred, still classified)', { message: 'x', code: 'EPROTOCOL', responseCode: 554, response: '554 5.7.1 Client host [192.0.2.7] blocked using zen.spamhaus.org', command: 'EHLO' }, 'deferred', 'blocklisted-ip', 'infrastructure'],
    ['TLS failure', { message: 'unable to verify the first certificate', code: 'ETLS' }, 'deferred', 'tls', 'infrastructure'],
    ['TLS upgrade timeout', { message: 'Timeout', code: 'ETIMEDOUT', timeoutType: 'UPGRADE_TIMEOUT' }, 'deferred', 'tls', 'infrastructure'],
    ['TLS required, no STARTTLS offered', { message: 'mx.example offers no STARTTLS and TLS is required', code: 'TLS_REQUIRED' }, 'deferred', 'tls', 'infrastructure'],
    ['DNS failure', { message: 'getaddrinfo ENOTFOUND mx.example', code: 'EDNS' }, 'deferred', 'dns', 'infrastructure'],
    ['connection refused', { message: 'connect ECONNREFUSED', code: 'ESOCKET' }, 'deferred', 'other', 'infrastructure'],
    ['greeting timeout', { message: 'Timeout', code: 'ETIMEDOUT', timeoutType: 'GREETING_TIMEOUT' }, 'deferred', 'other', 'infrastructure'],
  ];
  for (const [name, err, kind, category, bounceClass] of cases) {
    const v = classifyFailure(err);
    assert.deepEqual([v.kind, v.category, v.bounceClass], [kind, category, bounceClass], name);
  }
  const failed = classifyFailure({ message: 'Invalid recipient', code: 'EENVELOPE', command: 'API' });
  assert.equal(failed.kind, 'failed');
  assert.equal(failed.category, undefined, 'a record we cannot send is no bounce');
});

test('refusalVerdict: deliveries refused before SMTP', () => {
  assert.deepEqual(refusalVerdict('bounced', 'DNS_NULL_MX', 'dns'), { category: 'dns', bounceClass: 'recipient' });
  assert.deepEqual(refusalVerdict('deferred', 'DNS_TEMPFAIL', undefined), { category: 'dns', bounceClass: 'infrastructure' });
  assert.deepEqual(refusalVerdict('deferred', 'MTA_STS_NO_VALID_MX', undefined), { category: 'tls', bounceClass: 'infrastructure' });
  assert.deepEqual(refusalVerdict('deferred', 'SHAPING_DEFERRED', undefined), { category: 'throttled', bounceClass: 'infrastructure' });
  assert.deepEqual(refusalVerdict('deferred', 'POOL_UNAVAILABLE', undefined), { category: 'other', bounceClass: 'infrastructure' });
  assert.equal(refusalVerdict('failed', 'UNKNOWN_POOL', undefined), undefined);
});
