import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildMessageView, concerns, orderEvents, type StoredEvent } from './timeline.js';

function ev(type: string, atMs: number, extra: Partial<StoredEvent> = {}): StoredEvent {
  return {
    eventId: `${type}-${atMs}`, type, atMs, stage: 's', priority: '', recipients: [], domain: '', pool: '', attempt: 0,
    smtpCode: 0, smtpEnhanced: '', smtpMessage: '', smtpHost: '', reason: '', nextAttemptAtMs: null, latencyMs: null,
    connectionReused: null, tags: [], tls: '', source: '', site: '', category: '', bounceClass: '', via: '', fromDomain: '', listId: '', dkimDomain: '', dkimSelector: '', ...extra,
  };
}

test('orderEvents: by time, then lifecycle order when timestamps tie', () => {
  const ordered = orderEvents([ev('sent', 10), ev('opened', 10), ev('rendered', 5), ev('accepted', 5), ev('deferred', 10)]);
  assert.deepEqual(ordered.map((e) => e.type), ['accepted', 'rendered', 'deferred', 'sent', 'opened']);
});

test('concerns: listed recipients, else the named domain, else everyone', () => {
  const cases: Array<[Partial<StoredEvent>, string, boolean]> = [
    [{ recipients: ['a@x.org'] }, 'a@x.org', true],
    [{ recipients: ['a@x.org'] }, 'b@x.org', false],
    [{ domain: 'x.org' }, 'b@X.org', true],
    [{ domain: 'x.org' }, 'b@y.org', false],
    [{}, 'anyone@z.org', true],
  ];
  for (const [extra, address, want] of cases) assert.equal(concerns(ev('sent', 0, extra), address), want, JSON.stringify([extra, address]));
});

test('buildMessageView: durations between steps and per-recipient state, attempts and engagement', () => {
  const view = buildMessageView('m', [
    ev('accepted', 1000, { recipients: ['a@x.org', 'b@y.org'], priority: 'bulk', tags: ['t'] }),
    ev('rendered', 1050),
    ev('deferred', 2000, { domain: 'x.org', attempt: 1, smtpCode: 451, smtpMessage: 'later' }),
    ev('bounced', 2500, { recipients: ['b@y.org'], smtpCode: 550, smtpEnhanced: '5.1.1' }),
    ev('sent', 9000, { domain: 'x.org', attempt: 2, smtpCode: 250, connectionReused: true }),
    ev('clicked', 20_000, { recipients: ['a@x.org'] }),
  ])!;
  assert.deepEqual(view.timeline.map((s) => [s.type, s.sincePreviousMs, s.sinceAcceptedMs]), [
    ['accepted', 0, 0], ['rendered', 50, 50], ['deferred', 950, 1000], ['bounced', 500, 1500], ['sent', 6500, 8000], ['clicked', 11_000, 19_000],
  ]);
  assert.deepEqual(view.timeline[4].smtp, { code: 250 });
  assert.equal(view.timeline[4].connectionReused, true);
  const [a, b] = view.recipients;
  assert.deepEqual([a.address, a.state, a.attempts, a.afterAcceptedMs, a.clicked, a.opened], ['a@x.org', 'sent', 2, 8000, true, false]);
  assert.deepEqual([b.address, b.state, b.attempts, b.lastSmtp], ['b@y.org', 'bounced', 1, { code: 550, enhanced: '5.1.1' }]);
  assert.equal(view.priority, 'bulk');
  assert.equal(view.acceptedAt, new Date(1000).toISOString());
});

test('buildMessageView: each step says how the message left — source address, site, TLS — which key signed it and why it bounced', () => {
  const view = buildMessageView('m', [
    ev('accepted', 1000, { recipients: ['a@gmail.com', 'b@gone.example'] }),
    ev('rendered', 1010, { dkimDomain: 'mail.acme.com', dkimSelector: 's1' }),
    ev('sent', 1500, { recipients: ['a@gmail.com'], domain: 'gmail.com', smtpCode: 250, tls: 'TLSv1.3', source: '192.0.2.7', site: 'google' }),
    ev('bounced', 1600, { recipients: ['b@gone.example'], domain: 'gone.example', reason: 'NXDOMAIN', category: 'dns' }),
    ev('sent', 1700, { domain: 'relay.example', tls: 'none' }),
  ])!;
  const [accepted, rendered, sent, bounced, plain] = view.timeline;
  assert.equal(accepted.dkim, undefined);
  assert.deepEqual(rendered.dkim, { domain: 'mail.acme.com', selector: 's1' });
  assert.deepEqual([sent.tls, sent.source, sent.site, sent.category], ['TLSv1.3', '192.0.2.7', 'google', undefined]);
  assert.deepEqual([bounced.category, bounced.tls, bounced.source, bounced.site], ['dns', undefined, undefined, undefined]);
  assert.equal(plain.tls, 'none', 'a plaintext session shows as none');
  assert.ok(!('dkim' in sent) && !('site' in accepted), 'absent fields are left out');
});

test('buildMessageView: each step shows the bounce category and class, how feedback arrived, the sending domain and list', () => {
  const view = buildMessageView('m', [
    ev('accepted', 1000, { recipients: ['a@x.org'] }),
    ev('deferred', 1100, { recipients: ['a@x.org'], domain: 'x.org', smtpCode: 451, category: 'greylisted', bounceClass: 'infrastructure', fromDomain: 'news.acme.com', listId: 'weekly' }),
    ev('sent', 1200, { recipients: ['a@x.org'], domain: 'x.org', smtpCode: 250, fromDomain: 'news.acme.com', listId: 'weekly' }),
    ev('bounced', 5000, { recipients: ['a@x.org'], stage: 'inbound', category: 'mailbox-full', bounceClass: 'recipient', via: 'dsn' }),
    ev('complained', 6000, { recipients: ['a@x.org'], stage: 'inbound', category: 'abuse', via: 'arf' }),
  ])!;
  const [, deferred, sent, bounced, complained] = view.timeline;
  assert.deepEqual([deferred.category, deferred.bounceClass, deferred.via, deferred.fromDomain, deferred.listId], ['greylisted', 'infrastructure', undefined, 'news.acme.com', 'weekly']);
  assert.deepEqual([sent.category, sent.bounceClass, sent.fromDomain], [undefined, undefined, 'news.acme.com']);
  assert.deepEqual([bounced.category, bounced.bounceClass, bounced.via], ['mailbox-full', 'recipient', 'dsn']);
  assert.deepEqual([complained.category, complained.bounceClass, complained.via], ['abuse', undefined, 'arf']);
  assert.equal(view.recipients[0].state, 'bounced', 'an asynchronous bounce after sent is the latest state');
  assert.equal(view.recipients[0].complained, true);
});

test('buildMessageView: without an accepted event the first step stands in; no events, no view', () => {
  const view = buildMessageView('m', [ev('sent', 700, { recipients: ['a@x.org'] }), ev('rendered', 500)])!;
  assert.equal(view.acceptedAt, new Date(500).toISOString());
  assert.equal(view.recipients[0].afterAcceptedMs, 200);
  assert.equal(buildMessageView('m', []), null);
});
