/**
 * Bounce categories end to end: the dispatcher (embedded broker, in-process) delivers over an mx
 * route to a fake provider that answers each recipient with one real-looking reply per category
 * of the rule table; every `bounced` and `deferred` event carries the category and class, and
 * every outcome the record's sending domain and list.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { waitFor } from '../helpers/broker.js';
import { startHarness, type Harness } from '../dispatcher/dispatcher-harness.js';
import { recordFor } from '../dispatcher/fleet-support.js';
import { startFakeInternet, type FakeInternet, type ScriptedReply } from '../helpers/fake-internet/index.js';
import { BOUNCE_CATEGORIES } from '../../shared/bounces/classify.js';

/** Local part → the provider's answer to RCPT TO, and the event it must give. */
const REPLIES: Record<string, { reply: ScriptedReply; type: 'bounced' | 'deferred'; category: string; bounceClass: string }> = {
  nouser: { reply: { code: 550, message: "5.1.1 The email account that you tried to reach does not exist. Please try double-checking the recipient's email address. gsmtp" }, type: 'bounced', category: 'unknown-user', bounceClass: 'recipient' },
  full: { reply: { code: 552, message: '5.2.2 The email account that you tried to reach is over quota. gsmtp' }, type: 'bounced', category: 'mailbox-full', bounceClass: 'recipient' },
  disabled: { reply: { code: 550, message: '5.2.1 The email account that you tried to reach is disabled. gsmtp' }, type: 'bounced', category: 'mailbox-disabled', bounceClass: 'recipient' },
  spam: { reply: { code: 550, message: '5.7.1 Our system has detected that this message is likely unsolicited mail. gsmtp' }, type: 'bounced', category: 'spam', bounceClass: 'content' },
  policy: { reply: { code: 550, message: '5.4.1 Recipient address rejected: Access denied. AS(201806281)' }, type: 'bounced', category: 'policy', bounceClass: 'infrastructure' },
  listed: { reply: { code: 554, message: '5.7.1 Service unavailable; Client host [127.0.0.2] blocked using zen.spamhaus.org' }, type: 'bounced', category: 'blocklisted-ip', bounceClass: 'infrastructure' },
  unauth: { reply: { code: 550, message: '5.7.26 This mail is unauthenticated, which poses a security risk to the sender and Gmail users. gsmtp' }, type: 'bounced', category: 'authentication', bounceClass: 'infrastructure' },
  rate: { reply: { code: 450, message: '4.2.1 The user you are trying to contact is receiving mail at a rate that prevents additional messages from being delivered. gsmtp' }, type: 'deferred', category: 'throttled', bounceClass: 'infrastructure' },
  grey: { reply: { code: 451, message: '4.7.1 Greylisted, please try again in 300 seconds' }, type: 'deferred', category: 'greylisted', bounceClass: 'infrastructure' },
  nodomain: { reply: { code: 550, message: '5.1.2 Recipient address rejected: Domain not found' }, type: 'bounced', category: 'dns', bounceClass: 'recipient' },
  tls: { reply: { code: 530, message: '5.7.0 Must issue a STARTTLS command first' }, type: 'bounced', category: 'tls', bounceClass: 'infrastructure' },
  big: { reply: { code: 552, message: '5.3.4 Message size exceeds fixed limit' }, type: 'bounced', category: 'message-too-large', bounceClass: 'content' },
  odd: { reply: { code: 554, message: '5.0.0 Service unavailable' }, type: 'bounced', category: 'other', bounceClass: 'infrastructure' },
};

describe('bounce categories on delivery events', () => {
  let net: FakeInternet;
  let h: Harness;
  let dir: string;

  before(async () => {
    net = await startFakeInternet();
    net.dns.mx('provider.test', [{ exchange: 'mx.provider.test', priority: 10 }]);
    net.dns.a('mx.provider.test', '127.0.0.41');
    net.dns.nullMx('nullmx.test');
    net.dns.behave('servfail.test', 'servfail');
    net.dns.mx('plain.test', [{ exchange: 'mx.plain.test', priority: 10 }]);
    net.dns.a('mx.plain.test', '127.0.0.42');
    await net.smtp({ host: '127.0.0.42', port: net.smtpPort, tls: 'none' });
    await net.smtp({ host: '127.0.0.41', port: net.smtpPort, script: { rcpt: (rcpt) => REPLIES[rcpt.split('@')[0]]?.reply } });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'postline-bounces-'));
    const file = path.join(dir, 'routes.yaml');
    fs.writeFileSync(
      file,
      YAML.stringify({
        dns: { servers: net.dns.servers, timeoutMs: 1000, ttlFloorSeconds: 1, blockLocalAddresses: false, smtpPort: net.smtpPort },
        routes: { direct: { kind: 'mx' }, strict: { kind: 'mx', tls: 'required' } },
        pools: {
          default: { route: 'direct', addresses: [{ address: '127.0.0.2', ehlo: 'mta.postline.test' }] },
          strict: { route: 'strict', addresses: [{ address: '127.0.0.5', ehlo: 'strict.postline.test' }] },
        },
      }),
    );
    h = await startHarness({}, { 'dispatcher.routesFile': file });
  });
  after(async () => {
    await h?.close();
    await net?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const outcome = (messageId: string) => waitFor(() => h.events().find((e) => e.messageId === messageId && e.type !== 'accepted'), 20_000, `an outcome of ${messageId}`);
  const list = { fromDomain: 'news.acme.test', listId: 'weekly' };

  test('one reply per category: each bounced / deferred event carries its category and class, and the sending domain and list', async () => {
    assert.deepEqual([...new Set(Object.values(REPLIES).map((r) => r.category))].sort(), [...BOUNCE_CATEGORIES].sort(), 'every category is scripted');
    const records = Object.keys(REPLIES).map((local) => recordFor([`${local}@provider.test`], list));
    const ok = recordFor(['ann@provider.test'], list);
    await h.produce([...records, ok]);
    for (const r of records) {
      const want = REPLIES[r.envelope.to[0].split('@')[0]];
      const e = await outcome(r.messageId);
      assert.deepEqual(
        { type: e.type, category: e.category, bounceClass: e.bounceClass, fromDomain: e.fromDomain, listId: e.listId },
        { type: want.type, category: want.category, bounceClass: want.bounceClass, ...list },
        `${r.envelope.to[0]}: ${JSON.stringify(e.smtp)}`,
      );
    }
    const sent = await outcome(ok.messageId);
    assert.equal(sent.type, 'sent');
    assert.deepEqual([sent.category, sent.bounceClass, sent.fromDomain, sent.listId], [undefined, undefined, ...Object.values(list)]);
  });

  test('before any SMTP: a domain that takes no mail bounces as dns of the recipient; a failed lookup is deferred as dns of the infrastructure', async () => {
    const gone = recordFor(['dan@nullmx.test']);
    const later = recordFor(['eve@servfail.test']);
    await h.produce([gone, later]);
    const [g, l] = await Promise.all([outcome(gone.messageId), outcome(later.messageId)]);
    assert.deepEqual([g.type, g.category, g.bounceClass], ['bounced', 'dns', 'recipient'], JSON.stringify(g));
    assert.deepEqual([l.type, l.category, l.bounceClass], ['deferred', 'dns', 'infrastructure'], JSON.stringify(l));
    assert.equal(g.fromDomain, undefined, 'absent on the record, absent on the event');
  });

  test('without a reply: TLS required at a host that offers no STARTTLS is deferred as tls', async () => {
    const r = recordFor(['max@plain.test'], { pool: 'strict' });
    await h.produce([r]);
    const e = await outcome(r.messageId);
    assert.deepEqual([e.type, e.category, e.bounceClass], ['deferred', 'tls', 'infrastructure'], JSON.stringify(e));
    assert.match(e.reason ?? '', /^TLS_REQUIRED/);
  });
});
