/**
 * Direct delivery end to end: the dispatcher (embedded broker, in-process) with a routing file,
 * a DNS server on 127.0.0.1 and MX hosts on 127.0.0.2x, all on loopback. What the MX hosts see —
 * the source address, the EHLO name, TLS — is asserted at the receiving end.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { Topics } from '../../shared/topics.js';
import { DeadLetterContract } from '../../shared/contracts/dead-letter.js';
import { waitFor } from '../helpers/broker.js';
import { startHarness, type Harness } from '../dispatcher/dispatcher-harness.js';
import { recordFor } from '../dispatcher/fleet-support.js';
import { startFakeInternet, type FakeDns, type FakeInternet, type FakeSmtpServer } from '../helpers/fake-internet/index.js';

describe('mx routes', () => {
  let net: FakeInternet;
  let dns: FakeDns;
  let h: Harness;
  let port: number;
  const mx: Record<string, FakeSmtpServer> = {};
  let dir: string;

  before(async () => {
    net = await startFakeInternet();
    dns = net.dns;
    port = net.smtpPort;
    // Preference and fallback: mx1 is down (nothing listens on .20), mx2 answers.
    dns.mx('fallback.test', [{ exchange: 'mx1.fallback.test', priority: 10 }, { exchange: 'mx2.fallback.test', priority: 20 }]);
    dns.a('mx1.fallback.test', '127.0.0.20');
    dns.a('mx2.fallback.test', '127.0.0.21');
    // Both up: the most preferred takes the mail.
    dns.mx('pref.test', [{ exchange: 'b.pref.test', priority: 20 }, { exchange: 'a.pref.test', priority: 10 }], { ttl: 300 });
    dns.a('a.pref.test', '127.0.0.22');
    dns.a('b.pref.test', '127.0.0.21');
    // No MX: the domain's own A record (RFC 5321 §5.1).
    dns.a('amx.test', '127.0.0.23');
    dns.nullMx('nullmx.test');
    dns.behave('servfail.test', 'servfail');
    dns.behave('silent.test', 'timeout');
    dns.behave('garbage.test', 'malformed');
    // Truncated over UDP: the TCP answer is complete.
    dns.mx('trunc.test', [{ exchange: 'a.pref.test', priority: 10 }]);
    dns.behave('trunc.test', 'truncate');
    // 100 MX records; the 10 most preferred point at a live host.
    dns.mx('many.test', Array.from({ length: 100 }, (_, i) => ({ exchange: i < 10 ? 'a.pref.test' : `mx${i}.many.test`, priority: i })));
    // MX host behind a CNAME loop / without any address.
    dns.mx('loop.test', [{ exchange: 'loop1.loop.test', priority: 10 }]);
    dns.cname('loop1.loop.test', 'loop2.loop.test');
    dns.cname('loop2.loop.test', 'loop1.loop.test');
    dns.mx('noaddr.test', [{ exchange: 'ghost.noaddr.test', priority: 10 }]);
    // No STARTTLS offered.
    dns.mx('plain.test', [{ exchange: 'mx.plain.test', priority: 10 }]);
    dns.a('mx.plain.test', '127.0.0.24');

    // Reuse: six.test's only MX is reuse.test's second one; its open connection serves reuse.test.
    dns.mx('reuse.test', [{ exchange: 'first.reuse-host.test', priority: 10 }, { exchange: 'second.reuse-host.test', priority: 20 }]);
    dns.mx('six.test', [{ exchange: 'second.reuse-host.test', priority: 10 }]);
    dns.a('first.reuse-host.test', '127.0.0.31');
    dns.a('second.reuse-host.test', '127.0.0.32');
    // IPv6: a source address ::1 reaches the MX host at its AAAA record (its A record is for IPv4 sources).
    dns.mx('v6.test', [{ exchange: 'mx.v6.test', priority: 10 }]);
    dns.aaaa('mx.v6.test', '::1');
    dns.a('mx.v6.test', '127.0.0.23');
    for (const [name, host, starttls] of [['mx2', '127.0.0.21', true], ['a', '127.0.0.22', true], ['amx', '127.0.0.23', true], ['plain', '127.0.0.24', false], ['v6', '::1', true], ['first', '127.0.0.31', true], ['second', '127.0.0.32', true]] as const) {
      mx[name] = await net.smtp({ host, port, tls: starttls ? 'starttls' : 'none' });
    }
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'postline-routes-'));
    const file = path.join(dir, 'routes.yaml');
    fs.writeFileSync(
      file,
      YAML.stringify({
        dns: { servers: dns.servers, timeoutMs: 1000, ttlFloorSeconds: 1, blockLocalAddresses: false, smtpPort: port },
        routes: { direct: { kind: 'mx' }, strict: { kind: 'mx', tls: 'required' }, smarthost: { kind: 'relay' } },
        pools: {
          default: { route: 'direct', addresses: [{ address: '127.0.0.2', ehlo: 'mta.postline.test' }] },
          bulk: { route: 'direct', addresses: [{ address: '127.0.0.3', ehlo: 'bulk1.postline.test', weight: 1 }, { address: '127.0.0.4', ehlo: 'bulk2.postline.test', weight: 1 }] },
          strict: { route: 'strict', addresses: [{ address: '127.0.0.5', ehlo: 'strict.postline.test' }] },
          v6: { route: 'direct', addresses: [{ address: '::1', ehlo: 'v6.postline.test' }] },
          relayed: { route: 'smarthost' },
        },
        choose: { tenants: { 'tenant-relay': 'relayed' }, priorities: { bulk: 'bulk' } },
      }),
    );
    h = await startHarness({}, { 'dispatcher.routesFile': file });
  });
  after(async () => {
    await h?.close();
    await net?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const eventsOf = (messageId: string) => h.events().filter((e) => e.messageId === messageId);
  const outcome = (messageId: string) => waitFor(() => eventsOf(messageId).find((e) => e.type !== 'accepted'), 15_000, `an outcome of ${messageId}`);

  test('MX by preference, falling back to the next MX when the first is down; sent event carries tls, source, site', async () => {
    const a = recordFor(['ann@pref.test']);
    const b = recordFor(['bob@fallback.test']);
    await h.produce([a, b]);
    const [sa, sb] = await Promise.all([outcome(a.messageId), outcome(b.messageId)]);
    assert.equal(sa.type, 'sent');
    assert.equal(sb.type, 'sent', JSON.stringify(sb));
    assert.ok(mx.a.messages.some((m) => m.to.includes('ann@pref.test')), 'pref.test went to its preferred MX');
    assert.ok(mx.mx2.messages.some((m) => m.to.includes('bob@fallback.test')), 'fallback.test went to its second MX');
    assert.equal(sa.source, '127.0.0.2');
    assert.equal(sa.site, 'pref.test');
    // Opportunistic STARTTLS with smtp-server's self-signed certificate.
    assert.match(sa.tls ?? '', /^TLSv1\.[23]$/);
    const got = mx.a.messages.find((m) => m.to.includes('ann@pref.test'))!;
    assert.equal(got.tls, sa.tls);
    assert.equal(got.peer, '127.0.0.2');
    assert.equal(got.ehlo, 'mta.postline.test');
  });

  test('no MX → the domain\'s A record', async () => {
    const r = recordFor(['cat@amx.test']);
    await h.produce([r]);
    assert.equal((await outcome(r.messageId)).type, 'sent');
    assert.equal(mx.amx.messages.at(-1)?.to[0], 'cat@amx.test');
  });

  test('null MX, NXDOMAIN, an MX host without address → bounced, category dns', async () => {
    const rs = ['dan@nullmx.test', 'eve@nowhere.test', 'fay@noaddr.test'].map((to) => recordFor([to]));
    await h.produce(rs);
    const got = await Promise.all(rs.map((r) => outcome(r.messageId)));
    for (const e of got) {
      assert.equal(e.type, 'bounced', JSON.stringify(e));
      assert.equal(e.category, 'dns');
    }
    assert.match(got[0].reason ?? '', /null MX/);
    assert.match(got[1].reason ?? '', /NXDOMAIN/);
  });

  test('SERVFAIL, a silent server, a malformed reply and an MX host behind a CNAME loop (SERVFAIL, as a recursive resolver reports it) → deferred (DNS_TEMPFAIL) to the retry tiers', async () => {
    const rs = ['hal@servfail.test', 'ida@silent.test', 'jon@garbage.test', 'gus@loop.test'].map((to) => recordFor([to]));
    await h.produce(rs);
    const got = await Promise.all(rs.map((r) => outcome(r.messageId)));
    for (const e of got) {
      assert.equal(e.type, 'deferred', JSON.stringify(e));
      assert.match(e.reason ?? '', /^DNS_TEMPFAIL/);
    }
    await waitFor(() => (rs.every((r) => h.retries().some((x) => x.messageId === r.messageId)) ? true : undefined), 10_000, 'retry records');
  });

  test('a truncated answer (TCP) and 100 MX records → delivered', async () => {
    const rs = [recordFor(['kim@trunc.test']), recordFor(['lee@many.test'])];
    await h.produce(rs);
    for (const r of rs) {
      const e = await outcome(r.messageId);
      assert.equal(e.type, 'sent', JSON.stringify(e));
    }
    assert.ok(dns.queries.some((q) => q.name === 'trunc.test' && q.transport === 'tcp'));
  });

  test('200 messages to one domain cost one MX query', async () => {
    const before = dns.queriesFor('pref.test', 'MX').length;
    const rs = Array.from({ length: 200 }, (_, i) => recordFor([`u${i}@pref.test`]));
    await h.produce(rs);
    await waitFor(() => (rs.every((r) => eventsOf(r.messageId).some((e) => e.type === 'sent')) ? true : undefined), 60_000, '200 sent');
    // At most one more (the TTL of 300 s may have been crossed by nothing here).
    assert.equal(dns.queriesFor('pref.test', 'MX').length, Math.max(before, 1));
    assert.equal(dns.queriesFor('a.pref.test', 'A').length, 1);
    const queries = await h.metric('postline_dns_cache_lookups_total', 'type="MX"', 'result="hit"');
    assert.ok(queries >= 199, `cache hits ${queries}`);
  });

  test('pools: a record\'s pool, the priority\'s pool; the MX host sees the pool\'s source address and EHLO name', async () => {
    const byField = Array.from({ length: 6 }, (_, i) => recordFor([`p${i}@amx.test`], { pool: 'bulk' }));
    const byPriority = recordFor(['q@amx.test'], { priority: 'bulk' });
    await h.produce([...byField, byPriority]);
    await mx.amx.waitForMessages(1 + 7);
    const seen = mx.amx.messages.filter((m) => m.to[0].startsWith('p') || m.to[0] === 'q@amx.test');
    assert.equal(seen.length, 7);
    for (const m of seen) {
      assert.ok(['127.0.0.3', '127.0.0.4'].includes(m.peer), m.peer);
      assert.equal(m.ehlo, m.peer === '127.0.0.3' ? 'bulk1.postline.test' : 'bulk2.postline.test');
    }
    const sent = await outcome(byPriority.messageId);
    assert.ok(['127.0.0.3', '127.0.0.4'].includes(sent.source ?? ''));
  });

  test('an idle connection to one of the domain\'s MX hosts is reused before a more preferred host is connected to', async () => {
    const first = recordFor(['a@six.test']);
    await h.produce([first]);
    assert.equal((await outcome(first.messageId)).type, 'sent');
    const again = recordFor(['b@reuse.test']);
    await h.produce([again]);
    const e = await outcome(again.messageId);
    assert.equal(e.type, 'sent');
    assert.equal(e.connectionReused, true);
    assert.deepEqual(mx.second.messages.map((m) => m.to[0]), ['a@six.test', 'b@reuse.test']);
    assert.equal(mx.second.connections(), 1);
    assert.equal(mx.first.connections(), 0);
  });

  test('an IPv6 source address reaches the MX host at its AAAA address', async () => {
    const r = recordFor(['v@v6.test'], { pool: 'v6' });
    await h.produce([r]);
    const e = await outcome(r.messageId);
    assert.equal(e.type, 'sent', JSON.stringify(e));
    assert.equal(e.source, '::1');
    const got = mx.v6.messages.find((m) => m.to.includes('v@v6.test'));
    assert.equal(got?.peer, '::1');
    assert.equal(got?.ehlo, 'v6.postline.test');
    assert.ok(!mx.amx.messages.some((m) => m.to.includes('v@v6.test')));
  });

  test('tls: required at an MX host without STARTTLS → deferred (TLS_REQUIRED); opportunistic sends in plain text', async () => {
    // More refusals than open the host's breaker (5): they must not stop opportunistic mail to it.
    const strict = Array.from({ length: 6 }, (_, i) => recordFor([`max${i}@plain.test`], { pool: 'strict' }));
    await h.produce(strict);
    for (const r of strict) {
      const s = await outcome(r.messageId);
      assert.equal(s.type, 'deferred', JSON.stringify(s));
      assert.match(s.reason ?? '', /^(TLS_REQUIRED|SMTP_BREAKER_OPEN)/);
    }
    const loose = recordFor(['ned@plain.test']);
    await h.produce([loose]);
    const l = await outcome(loose.messageId);
    assert.equal(l.type, 'sent', JSON.stringify(l));
    assert.equal(l.tls, 'none');
    assert.ok(!mx.plain.messages.some((m) => m.to[0].startsWith('max')));
  });

  test('an unknown pool → failed and dead-lettered (UNKNOWN_POOL); a relay pool goes through the relay', async () => {
    const unknown = recordFor(['oli@pref.test'], { pool: 'no-such-pool' });
    const relayed = recordFor(['pat@pref.test'], { tenant: 'tenant-relay' });
    await h.produce([unknown, relayed]);
    const [u, r] = await Promise.all([outcome(unknown.messageId), outcome(relayed.messageId)]);
    assert.equal(u.type, 'failed');
    assert.match(u.reason ?? '', /^UNKNOWN_POOL/);
    const dead = await waitFor(
      () => h.reader.records.filter((x) => x.topic === Topics.dead).map((x) => DeadLetterContract.decode(x.message.value)).find((d) => d.reason.includes('no-such-pool')),
      10_000,
      'dead letter',
    );
    assert.equal(dead.code, 'UNKNOWN_POOL');
    assert.equal(r.type, 'sent');
    assert.ok(h.sink.messages.some((m) => m.to.includes('pat@pref.test')), 'through the relay');
  });
});
