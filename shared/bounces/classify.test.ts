import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BOUNCE_CATEGORIES, bounceClassifier, classifyBounce, loadBounceRules, type BounceCategory, type BounceClass } from './classify.js';
import { ConfigError } from '../config-loader.js';

/** Real-looking replies (full reply lines as servers send them) → category and class. */
const REPLIES: Array<[string, BounceCategory, BounceClass]> = [
  // Google
  ["550 5.1.1 The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos or unnecessary spaces. https://support.google.com/mail/?p=NoSuchUser a1si123 - gsmtp", 'unknown-user', 'recipient'],
  ['550 5.2.1 The email account that you tried to reach is disabled. https://support.google.com/mail/?p=DisabledUser gsmtp', 'mailbox-disabled', 'recipient'],
  ['452 4.2.2 The email account that you tried to reach is over quota. Please direct the recipient to https://support.google.com/mail/?p=OverQuotaTemp gsmtp', 'mailbox-full', 'recipient'],
  ['552 5.2.2 The recipient\'s inbox is out of storage space. Please direct the recipient to https://support.google.com/mail/?p=OverQuotaPerm gsmtp', 'mailbox-full', 'recipient'],
  ['421 4.7.28 [192.0.2.7] Our system has detected an unusual rate of unsolicited mail originating from your IP address. To protect our users from spam, mail sent from your IP address has been temporarily rate limited. gsmtp', 'throttled', 'infrastructure'],
  ['550 5.7.28 [192.0.2.7] Our system has detected an unusual rate of unsolicited mail originating from your IP address. To protect our users from spam, mail sent from your IP address has been blocked. gsmtp', 'blocklisted-ip', 'infrastructure'],
  ['550 5.7.26 This mail is unauthenticated, which poses a security risk to the sender and Gmail users, and has been blocked. The sender must authenticate with at least one of SPF or DKIM. gsmtp', 'authentication', 'infrastructure'],
  ["550 5.7.26 Unauthenticated email from example.com is not accepted due to domain's DMARC policy. Please contact the administrator of example.com domain. gsmtp", 'authentication', 'infrastructure'],
  ['550 5.7.1 [192.0.2.7] Our system has detected that this message is likely unsolicited mail. To reduce the amount of spam sent to Gmail, this message has been blocked. gsmtp', 'spam', 'content'],
  ['552 5.7.0 This message was blocked because its content presents a potential security issue. gsmtp', 'spam', 'content'],
  ['450 4.2.1 The user you are trying to contact is receiving mail at a rate that prevents additional messages from being delivered. gsmtp', 'throttled', 'infrastructure'],
  ['421 4.7.0 Try again later, closing connection. (EHLO) gsmtp', 'throttled', 'infrastructure'],
  ['552 5.3.4 Your message exceeded Google\'s message size limits. gsmtp', 'message-too-large', 'content'],
  ['530 5.7.0 Must issue a STARTTLS command first. gsmtp', 'tls', 'infrastructure'],
  ['550 5.7.25 [192.0.2.7] The IP address sending this message does not have a PTR record setup, or the corresponding forward DNS entry does not point to the sending IP. gsmtp', 'authentication', 'infrastructure'],
  ['421 4.7.0 [192.0.2.7] This message does not have authentication information or fails to pass authentication checks (SPF or DKIM). gsmtp', 'authentication', 'infrastructure'],
  ['550 5.7.1 [192.0.2.7] The user or domain that you are sending to (or from) has a policy that prohibited the mail that you sent. gsmtp', 'policy', 'infrastructure'],
  // Microsoft
  ['550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup', 'unknown-user', 'recipient'],
  ['550 5.5.0 Requested action not taken: mailbox unavailable (S2017062302). [DM6NAM12FT034.eop-nam12.prod.protection.outlook.com]', 'unknown-user', 'recipient'],
  ['550 5.4.1 Recipient address rejected: Access denied. AS(201806281) [DB5EUR03FT012.eop-EUR03.prod.protection.outlook.com]', 'policy', 'infrastructure'],
  ['550 5.7.1 Unfortunately, messages from [192.0.2.7] weren\'t sent. Please contact your Internet service provider since part of their network is on our block list (S3150). You can also refer your provider to http://mail.live.com/mail/troubleshooting.aspx#errors.', 'blocklisted-ip', 'infrastructure'],
  ['550 5.7.1 Unfortunately, messages from [192.0.2.7] weren\'t sent. Please contact your Internet service provider since part of their network is on our block list (S3140).', 'blocklisted-ip', 'infrastructure'],
  ['550 5.7.708 Service unavailable. Access denied, traffic not accepted from this IP. For more information please go to http://go.microsoft.com/fwlink/?LinkId=526653', 'policy', 'infrastructure'],
  ['550 5.7.515 Access denied, sending domain example.com does not meet the required authentication level.', 'authentication', 'infrastructure'],
  ['451 4.7.500 Server busy. Please try again later from [192.0.2.7]. (S77719) [BN8NAM12FT052.eop-nam12.prod.protection.outlook.com]', 'throttled', 'infrastructure'],
  ['421 RP-001 (BAY004-MC1F12) Unfortunately, some messages from 192.0.2.7 weren\'t sent. Please try again. We have limits for how many messages can be sent per hour and per day.', 'throttled', 'infrastructure'],
  ['550 SC-001 (BAY004-MC5F20) Unfortunately, messages from 192.0.2.7 weren\'t sent. Please contact your Internet service provider. You can refer your provider to http://mail.live.com/mail/troubleshooting.aspx#errors.', 'blocklisted-ip', 'infrastructure'],
  ['550 OU-002 (SNT004-MC1F43) Unfortunately, messages from 192.0.2.7 weren\'t sent. Please contact your Internet service provider.', 'spam', 'content'],
  ['554 5.2.2 mailbox full; STOREDRV.Deliver.Exception:QuotaExceededException.MapiExceptionShutoffQuotaExceeded', 'mailbox-full', 'recipient'],
  ['550 5.2.1 Mailbox cannot be accessed; RESOLVER.ADR.RecipientDisabled', 'mailbox-disabled', 'recipient'],
  // Yahoo / AOL
  ['554 delivery error: dd This user doesn\'t have a yahoo.com account (nobody@yahoo.com) [0] - mta1012.mail.gq1.yahoo.com', 'unknown-user', 'recipient'],
  ['554 5.1.1 <nobody@yahoo.com>: Recipient address rejected: User unknown', 'unknown-user', 'recipient'],
  ['421 4.7.0 [TSS04] Messages from 192.0.2.7 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes', 'throttled', 'infrastructure'],
  ['421 4.7.0 [TS01] Messages from 192.0.2.7 temporarily deferred due to user complaints - 4.16.55.1; see https://help.yahoo.com/kb/postmaster/SLN3434.html', 'throttled', 'infrastructure'],
  ['554 5.7.9 Message not accepted for policy reasons.  See https://postmaster.yahooinc.com/error-codes', 'policy', 'infrastructure'],
  ['554 5.7.1 [TS03] All messages from 192.0.2.7 will be permanently deferred; Retrying will NOT succeed. See https://postmaster.yahooinc.com/error-codes', 'blocklisted-ip', 'infrastructure'],
  ['552 1 Requested mail action aborted, mailbox not found', 'unknown-user', 'recipient'],
  ['554 30 Sorry, your message size exceeds the limit of 41943040', 'message-too-large', 'content'],
  // Apple iCloud
  ['550 5.1.1 <nobody@icloud.com>: user does not exist', 'unknown-user', 'recipient'],
  ['554 5.7.1 [CS01] Message rejected due to local policy. Please visit https://support.apple.com/en-us/HT204137', 'policy', 'infrastructure'],
  ['550 5.7.0 Blocked - see https://support.apple.com/en-us/HT204137', 'blocklisted-ip', 'infrastructure'],
  ['552 5.2.2 <someone@me.com>: user is over quota', 'mailbox-full', 'recipient'],
  // Blocklists and filtering services
  ['554 5.7.1 Service unavailable; Client host [192.0.2.7] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/192.0.2.7', 'blocklisted-ip', 'infrastructure'],
  ['550 5.7.1 Service unavailable, Client host [192.0.2.7] blocked using Spamhaus', 'blocklisted-ip', 'infrastructure'],
  ['554 Blocked - see https://ipcheck.proofpoint.com/?ip=192.0.2.7', 'blocklisted-ip', 'infrastructure'],
  ['550 5.7.1 Message rejected by Proofpoint: identified as spam', 'spam', 'content'],
  ['550 Rejected by header based Anti-Spoofing policy: nobody@example.com - https://community.mimecast.com/docs/DOC-1369#550 [abc.ukx1]', 'policy', 'infrastructure'],
  ['554 Email rejected due to security policies - https://community.mimecast.com/docs/DOC-1369#554 [Mimecast spam filter]', 'spam', 'content'],
  ['550 Envelope blocked - User Entry - https://community.mimecast.com/docs/DOC-1369#550', 'spam', 'content'],
  ['550 5.7.1 Mail from IP 192.0.2.7 was rejected due to listing in Barracuda Reputation Block List', 'blocklisted-ip', 'infrastructure'],
  // Postfix
  ['550 5.1.1 <nobody@example.net>: Recipient address rejected: User unknown in local recipient table', 'unknown-user', 'recipient'],
  ['550 5.1.1 <nobody@example.net>: Recipient address rejected: User unknown in virtual mailbox table', 'unknown-user', 'recipient'],
  ['450 4.2.0 <bob@example.net>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/example.net.html', 'greylisted', 'infrastructure'],
  ['451 4.7.1 <bob@example.net>: Recipient address rejected: Please try again later', 'greylisted', 'infrastructure'],
  ['552 5.3.4 Message size exceeds fixed limit', 'message-too-large', 'content'],
  ['554 5.7.1 <bob@example.net>: Relay access denied', 'policy', 'infrastructure'],
  ['450 4.1.2 <bob@nowhere.example>: Recipient address rejected: Domain not found', 'dns', 'infrastructure'],
  ['550 5.7.1 <bob@example.net>: Recipient address rejected: SPF check failed: example.com does not designate 192.0.2.7 as permitted sender', 'authentication', 'infrastructure'],
  ['554 5.7.1 Rejected for policy reasons: DMARC policy of example.com is reject', 'authentication', 'infrastructure'],
  ['550 5.7.1 Message content rejected, UBE, id=12345-01', 'spam', 'content'],
  ['450 4.7.1 Client host rejected: cannot find your reverse hostname, [192.0.2.7]', 'authentication', 'infrastructure'],
  ['550 5.2.1 <bob@example.net>: Recipient address rejected: account is disabled', 'mailbox-disabled', 'recipient'],
  // Exim
  ['550 Unrouteable address', 'unknown-user', 'recipient'],
  ['550 5.1.1 <bob@example.net>... User unknown', 'unknown-user', 'recipient'],
  ['550 Sender verify failed', 'policy', 'infrastructure'],
  ['451 Temporary local problem - please try later', 'greylisted', 'infrastructure'],
  ['550 Administrative prohibition', 'policy', 'infrastructure'],
  ['552 Message size exceeds maximum permitted', 'message-too-large', 'content'],
  ['550 This message was classified as SPAM and may not be delivered', 'spam', 'content'],
  ['452 4.2.2 Mailbox full', 'mailbox-full', 'recipient'],
  ['550 Mailbox quota exceeded', 'mailbox-full', 'recipient'],
  ['451 4.7.1 Rate limit exceeded, too many messages from your host', 'throttled', 'infrastructure'],
  // Exchange on-premises, Sendmail, qmail and others
  ['550 5.1.1 User unknown', 'unknown-user', 'recipient'],
  ['550 5.7.1 Client does not have permissions to send as this sender', 'policy', 'infrastructure'],
  ['550 5.7.1 Delivery not authorized, message refused', 'policy', 'infrastructure'],
  ['554 5.6.1 Body type not supported by remote host', 'spam', 'content'],
  ['550 5.7.10 Encryption needed', 'tls', 'infrastructure'],
  ['450 4.4.4 Unable to route', 'dns', 'infrastructure'],
  ['550 5.1.2 <bob@nowhere.example>: Recipient address rejected: Domain not found', 'dns', 'recipient'],
  ['550 5.1.2 Host unknown (Name server: example.invalid: host not found)', 'dns', 'recipient'],
  ['553 5.1.3 The recipient address <bob@@example.net> is not a valid RFC 5321 address.', 'unknown-user', 'recipient'],
  ['550 5.1.6 Recipient mailbox has moved', 'mailbox-disabled', 'recipient'],
  ['550 5.7.27 Sender address has null MX', 'authentication', 'infrastructure'],
  ['550 Sender domain has null MX', 'authentication', 'infrastructure'],
  ['550 5.7.1 Unauthenticated email is not accepted from this domain', 'authentication', 'infrastructure'],
  ['554 5.7.1 Message rejected because it contains a prohibited attachment', 'spam', 'content'],
  ['550 5.7.606 Access denied, banned sending IP [192.0.2.7]. To request removal from this list please visit https://sender.office.com/', 'blocklisted-ip', 'infrastructure'],
  ['550 5.7.509 Access denied, sending domain example.com does not pass DMARC verification and has a DMARC policy of reject.', 'authentication', 'infrastructure'],
  ['452 4.5.3 Too many recipients', 'throttled', 'infrastructure'],
  ['451 4.3.0 Mail server temporarily rejected message.', 'other', 'infrastructure'],
  ['554 5.0.0 Service unavailable', 'other', 'infrastructure'],
  // A bare 550 says nothing reliable (policy blocks use it too): never a recipient-class verdict.
  ['550 Requested action not taken', 'other', 'infrastructure'],
  ['552 Requested mail action aborted: exceeded storage allocation', 'mailbox-full', 'recipient'],
  ['421 Service not available, closing transmission channel', 'throttled', 'infrastructure'],
  ['450 Requested mail action not taken', 'other', 'infrastructure'],
];

describe('classifyBounce: the shipped rule table', () => {
  for (const [line, category, bounceClass] of REPLIES) {
    it(`${category}/${bounceClass}: ${line.slice(0, 80)}`, () => {
      const last = line.split(/\r?\n/).pop()!;
      const m = /^(\d{3})[ -]?(?:([245]\.\d{1,3}\.\d{1,3})\s+)?(.*)$/.exec(last)!;
      // The full reply (text only, as in a DSN's Diagnostic-Code) and its parts must agree.
      const parts = { code: Number(m[1]), ...(m[2] ? { enhanced: m[2] } : {}), text: m[3] };
      assert.deepEqual(classifyBounce(parts), { category, bounceClass }, 'from code, enhanced code and text');
      assert.deepEqual(classifyBounce({ text: line }), { category, bounceClass }, 'from the reply line alone');
    });
  }

  it('has at least 60 replies and reaches every category', () => {
    assert.ok(REPLIES.length >= 60, `${REPLIES.length} replies`);
    const reached = new Set(REPLIES.map((r) => r[1]));
    assert.deepEqual(BOUNCE_CATEGORIES.filter((c) => !reached.has(c)), []);
  });

  it('reads a DSN Diagnostic-Code (with its type) and copes with nothing at all', () => {
    assert.deepEqual(classifyBounce({ text: 'smtp; 550 5.1.1 <a@example.net>: Recipient address rejected: User unknown' }), { category: 'unknown-user', bounceClass: 'recipient' });
    assert.deepEqual(classifyBounce({ text: 'X-Postfix; mail for example.net loops back to myself' }), { category: 'other', bounceClass: 'infrastructure' });
    assert.deepEqual(classifyBounce({}), { category: 'other', bounceClass: 'infrastructure' });
    assert.deepEqual(classifyBounce({ enhanced: '5.2.2' }), { category: 'mailbox-full', bounceClass: 'recipient' });
    assert.deepEqual(classifyBounce({ code: 553 }), { category: 'other', bounceClass: 'infrastructure' });
    assert.deepEqual(classifyBounce({ code: 551 }), { category: 'unknown-user', bounceClass: 'recipient' });
  });

  it('falls back from text to the enhanced code, then to the basic code', () => {
    assert.deepEqual(classifyBounce({ code: 550, enhanced: '5.7.1', text: 'go away' }), { category: 'policy', bounceClass: 'infrastructure' });
    assert.deepEqual(classifyBounce({ code: 550, enhanced: '5.1.1', text: 'go away' }), { category: 'unknown-user', bounceClass: 'recipient' });
    assert.deepEqual(classifyBounce({ code: 552, text: 'go away' }), { category: 'mailbox-full', bounceClass: 'recipient' });
    assert.deepEqual(classifyBounce({ code: 554, text: 'go away' }), { category: 'other', bounceClass: 'infrastructure' });
  });

  it('is fast: well under 20 µs per reply', () => {
    const inputs = REPLIES.map(([line]) => ({ text: line }));
    for (let i = 0; i < 2000; i++) classifyBounce(inputs[i % inputs.length]);
    const n = 50_000;
    // CPU time, not wall time: other processes sharing the machine do not count.
    const t0 = process.cpuUsage();
    for (let i = 0; i < n; i++) classifyBounce(inputs[i % inputs.length]);
    const used = process.cpuUsage(t0);
    const us = (used.user + used.system) / n;
    assert.ok(us < 20, `${us.toFixed(2)} µs per reply`);
  });
});

describe('loadBounceRules', () => {
  const header = `categories:\n${BOUNCE_CATEGORIES.map((c) => `  ${c}: infrastructure`).join('\n')}\n`;

  it('loads a table; a rule may set its class', () => {
    const table = loadBounceRules(`${header}text:\n  - { category: spam, pattern: "buy now", class: content }\nenhanced:\n  - { enhanced: x.1.1, category: unknown-user }\ncode:\n  - { code: 5xx, category: policy }\n`);
    const classify = bounceClassifier(table);
    assert.deepEqual(classify({ text: '550 Buy NOW' }), { category: 'spam', bounceClass: 'content' });
    assert.deepEqual(classify({ text: '450 4.1.1 x' }), { category: 'unknown-user', bounceClass: 'infrastructure' });
    assert.deepEqual(classify({ code: 554, text: 'x' }), { category: 'policy', bounceClass: 'infrastructure' });
    assert.deepEqual(classify({ code: 421, text: 'x' }), { category: 'other', bounceClass: 'infrastructure' });
  });

  it('names the line of every bad rule', () => {
    const yaml = `${header}text:\n  - { category: spam, pattern: "(" }\n  - { category: nope, pattern: "x" }\n  - { category: spam, patern: "x" }\nenhanced:\n  - { enhanced: 5.1, category: unknown-user }\ncode:\n  - { code: 55, category: other }\n  - { code: 550, category: other, class: everyone }\n`;
    const n = BOUNCE_CATEGORIES.length + 2;
    assert.throws(
      () => loadBounceRules(yaml, 'rules.yaml'),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        const p = err.problems.join('\n');
        for (const [line, what] of [[n + 1, 'pattern'], [n + 2, 'category must be'], [n + 3, 'unknown key "patern"'], [n + 5, 'enhanced'], [n + 7, 'code'], [n + 8, 'class']] as const) {
          assert.match(p, new RegExp(`rules\\.yaml:${line}: .*${what}`), `line ${line}: ${what}\n${p}`);
        }
        return true;
      },
    );
  });

  it('refuses a table that leaves a category without a class or is not YAML', () => {
    assert.throws(() => loadBounceRules('categories:\n  spam: content\ntext: []\nenhanced: []\ncode: []\n'), /unknown-user has no class/);
    assert.throws(() => loadBounceRules('text: [\n'), ConfigError);
  });
});
