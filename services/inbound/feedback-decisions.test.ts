import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { FeedbackKeyring, returnPathOf, recipientHash } from '../../shared/feedback/feedback-token.js';
import { loadPostlineConfig } from '../../shared/config.js';
import { ConfigError } from '../../shared/config-loader.js';
import { decide, routeOf, sourceOf, uniqueEvents, type InboundRoute } from './feedback-decisions.js';
import { readReportParts } from './report-parts.js';
import { classifyBounce } from '../../shared/bounces/classify.js';
import { checkInboundConfig } from './main.js';

const keyring = new FeedbackKeyring([{ id: 1, secret: 'decisions-test-secret-'.repeat(2) }]);
const opts = { keyring, domain: 'bounces.example.com', complaintLocalParts: ['fbl', 'abuse'] };
const ref = { messageId: 'm-1', tenant: 'acme', recipient: 'jane.doe@gmail.com' };
const sample = (name: string) => fs.readFileSync(path.join(import.meta.dirname, '../../test/inbound/samples', name), 'utf8');
const ctx = { keyring, classify: classifyBounce };

test('routeOf: signed return paths, signed mailto unsubscribes and complaint addresses; nothing else', () => {
  const rp = returnPathOf(keyring, 'bounces.example.com', ref);
  assert.equal(routeOf(rp, opts)?.kind, 'bounce');
  assert.equal(routeOf(rp.toUpperCase(), opts)?.kind, 'bounce', 'case-folded by an MTA');
  const bounce = routeOf(rp, opts) as Extract<InboundRoute, { kind: 'bounce' }>;
  assert.equal(bounce.ref.recipientHash, recipientHash('jane.doe@gmail.com'));
  const unsub = `u-${keyring.sign({ ...ref, purpose: 'unsubscribe', listId: 'news' })}@bounces.example.com`;
  assert.equal(routeOf(unsub, opts)?.kind, 'unsubscribe');
  assert.equal(routeOf('FBL@Bounces.Example.com', opts)?.kind, 'complaint');
  for (const no of [rp.replace('bounces.example.com', 'other.example'), 'postmaster@bounces.example.com', unsub.replace(/^u-/, 'b-'), 'b-zzzz@bounces.example.com', 'not-an-address', '@bounces.example.com']) {
    assert.equal(routeOf(no, opts), undefined, no);
  }
  assert.equal(routeOf(rp, { ...opts, keyring: new FeedbackKeyring([{ id: 1, secret: 'another-key-entirely-'.repeat(2) }]) }), undefined, 'another key');
});

test('decide: an ARF report sent to a return path is a complaint; the same complaint to two addresses is one event', async () => {
  const rp = returnPathOf(keyring, 'bounces.example.com', { ...ref, recipient: 'kate@yahoo.com' });
  const parts = await readReportParts(Buffer.from(sample('yahoo-arf.eml').replaceAll('b-RETURNPATH@bounces.example.com', rp).replace('X-Postline-Ref: REF-TOKEN\n', '')));
  const viaReturnPath = decide(parts, routeOf(rp, opts)!, ctx);
  assert.equal(viaReturnPath.outcome, 'published');
  assert.equal(viaReturnPath.events[0].type, 'complained');
  assert.deepEqual(viaReturnPath.events[0].recipients, ['kate@yahoo.com']);
  assert.equal(viaReturnPath.events[0].source, '192.0.2.25', 'Source-IP: the address that delivered it (source-address complaint rates)');
  const fbl = decide(parts, routeOf('fbl@bounces.example.com', opts)!, ctx);
  const abuse = decide(parts, routeOf('abuse@bounces.example.com', opts)!, ctx);
  assert.equal(uniqueEvents([fbl, abuse]).length, 1);
});

test('decide: not-spam reports are not complaints; mail to a complaint address that is not ARF is dropped', async () => {
  const notSpam = await readReportParts(Buffer.from(sample('yahoo-arf.eml').replace('Feedback-Type: abuse', 'Feedback-Type: not-spam')));
  assert.deepEqual(decide(notSpam, routeOf('fbl@bounces.example.com', opts)!, ctx).outcome, 'ignored');
  const dsn = await readReportParts(Buffer.from(sample('gmail-dsn.eml')));
  const v = decide(dsn, routeOf('fbl@bounces.example.com', opts)!, ctx);
  assert.deepEqual([v.outcome, v.reason], ['dropped', 'not-arf']);
});

test('decide: a bounce whose X-Postline-Ref names another message keeps the return path\'s ids and gains no fromDomain', async () => {
  const rp = returnPathOf(keyring, 'bounces.example.com', ref);
  const foreign = keyring.sign({ purpose: 'ref', messageId: 'm-other', tenant: 'evil', recipient: 'jane.doe@gmail.com', fromDomain: 'evil.example' });
  const parts = await readReportParts(Buffer.from(sample('gmail-dsn.eml').replace('REF-TOKEN', foreign)));
  const v = decide(parts, routeOf(rp, opts)!, ctx);
  assert.equal(v.events[0].messageId, 'm-1');
  assert.equal(v.events[0].tenant, 'acme');
  assert.equal(v.events[0].fromDomain, undefined);
});

test('checkInboundConfig lists every missing piece', () => {
  const config = loadPostlineConfig({ env: {}, overrides: { 'inbound.tlsKeyFile': '/k.pem' } });
  assert.throws(() => checkInboundConfig(config), (err: unknown) => err instanceof ConfigError && /RETURN_PATH_DOMAIN/.test(err.message) && /FEEDBACK_KEYS/.test(err.message) && /tlsCertFile/.test(err.message));
});

test('sourceOf: an ARF Source-IP becomes an event\'s source only when it is an IP address', () => {
  assert.deepEqual(sourceOf('192.0.2.25'), { source: '192.0.2.25' });
  assert.deepEqual(sourceOf(' [2001:DB8::1] '), { source: '2001:db8::1' });
  assert.deepEqual(sourceOf('::ffff:192.0.2.7'), { source: '192.0.2.7' });
  for (const no of [undefined, '', 'mail.example.com', '192.0.2.300', '192.0.2.1; drop']) assert.deepEqual(sourceOf(no), {}, String(no));
});
