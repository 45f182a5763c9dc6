/**
 * The dispatcher's calls into the shaper for mx routes, with a recording shaper standing in for
 * the real one (services/dispatcher/shaping): the shaping key (source, site, domain), fleet
 * limits from `limits` (connections, messages per connection — checked at the MX host),
 * `observe` per reply, `recordSent`/`recordBounce`, a source the shaper holds back
 * (POOL_UNAVAILABLE) and an admission refused (SHAPING_DEFERRED → the shortest retry tier).
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
import { ShapingDeferral, type Shaper, type ShapingKey } from '../../services/dispatcher/shaping/shaper.js';
import { startFakeInternet, type FakeInternet, type FakeSmtpServer } from '../helpers/fake-internet/index.js';

class RecordingShaper implements Shaper {
  admitted: ShapingKey[] = [];
  observed: Array<{ key: ShapingKey; code?: number; enhanced?: string }> = [];
  sent: string[] = [];
  bounces: Array<{ source: string; recipientClass: boolean }> = [];
  limitsAsked: ShapingKey[] = [];
  unavailable = new Set<string>();
  refuseDomains = new Set<string>();
  async admit(key: ShapingKey): Promise<void> {
    this.admitted.push(key);
    if (this.refuseDomains.has(key.domain)) throw new ShapingDeferral(`${key.source}|${key.site}`, 'wait-too-long', 5000);
  }
  limits(key: ShapingKey) {
    this.limitsAsked.push(key);
    return { maxConnections: 1, maxMessagesPerConnection: 2 };
  }
  observe(key: ShapingKey, reply: { code?: number; enhanced?: string }): void {
    this.observed.push({ key, code: reply.code, enhanced: reply.enhanced });
  }
  pools: Array<string | undefined> = [];
  sourceAvailable(source: string, pool?: string): boolean {
    this.pools.push(pool);
    return !this.unavailable.has(source);
  }
  recordSent(source: string, pool?: string): void {
    this.sent.push(`${source}/${pool}`);
  }
  recordBounce(source: string, recipientClass: boolean, pool?: string): void {
    this.bounces.push({ source: `${source}/${pool}`, recipientClass });
  }
}

describe('shaper hooks', () => {
  let net: FakeInternet;
  let h: Harness;
  let server: FakeSmtpServer;
  const site: FakeSmtpServer[] = [];
  let dir: string;
  const shaper = new RecordingShaper();

  before(async () => {
    net = await startFakeInternet();
    const dns = net.dns;
    for (const d of ['one.test', 'two.test']) dns.mx(d, [{ exchange: 'mx.shared-host.test', priority: 10 }]);
    dns.a('mx.shared-host.test', '127.0.0.28');
    server = await net.smtp({
      host: '127.0.0.28',
      name: 'mx.shared-host.test',
      script: {
        unknownUsers: ['gone@one.test', 'gone2@one.test', 'gone3@one.test'],
        rcpt: (rcpt) => (rcpt === 'full@one.test' ? { code: 552, message: '5.2.2 Mailbox full' } : undefined),
      },
    });
    // One site, two MX hosts (one per customer domain, as at Microsoft 365).
    dns.mx('three.test', [{ exchange: 'three-test.mail.bigsite.test', priority: 10 }]);
    dns.mx('four.test', [{ exchange: 'four-test.mail.bigsite.test', priority: 10 }]);
    dns.a('three-test.mail.bigsite.test', '127.0.0.29');
    dns.a('four-test.mail.bigsite.test', '127.0.0.30');
    for (const host of ['127.0.0.29', '127.0.0.30']) site.push(await net.smtp({ host, script: { replyDelayMs: 20 } }));
    shaper.unavailable.add('127.0.0.8');
    shaper.refuseDomains.add('two.test');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'postline-routes-'));
    const file = path.join(dir, 'routes.yaml');
    fs.writeFileSync(
      file,
      YAML.stringify({
        dns: { servers: dns.servers, timeoutMs: 500, blockLocalAddresses: false, smtpPort: net.smtpPort },
        routes: { direct: { kind: 'mx' } },
        pools: {
          default: { route: 'direct', addresses: [{ address: '127.0.0.7', ehlo: 'mta.postline.test' }] },
          paused: { route: 'direct', addresses: [{ address: '127.0.0.8', ehlo: 'paused.postline.test' }] },
        },
      }),
    );
    h = await startHarness({}, { 'dispatcher.routesFile': file }, undefined, { shaper });
  });
  after(async () => {
    await h?.close();
    await net?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const outcome = (messageId: string) => waitFor(() => h.events().find((e) => e.messageId === messageId && e.type !== 'accepted'), 20_000, `an outcome of ${messageId}`);

  test('limits, admission key, observe and recordSent/recordBounce', async () => {
    const rs = Array.from({ length: 6 }, (_, i) => recordFor([`u${i}@one.test`]));
    const gone = recordFor(['gone@one.test']);
    await h.produce([...rs, gone]);
    for (const r of rs) assert.equal((await outcome(r.messageId)).type, 'sent');
    assert.equal((await outcome(gone.messageId)).type, 'bounced');
    // One connection at a time (limits.maxConnections): at the server, messages never alternate
    // between connections — once a newer connection carries one, no older one carries another.
    // (Its open-connection count may show 2 for the moment a replaced connection's QUIT is
    // closing while the next one opens: the client counts a connection closed once the server
    // has ended it, the server once the client's side has closed too.)
    const conns = server.messagesFrom('127.0.0.7').sort((a, b) => a.at - b.at).map((m) => m.connection);
    assert.deepEqual(conns, [...conns].sort((a, b) => a - b), `connections in time order: ${conns.join(',')}`);
    assert.ok(server.maxConcurrentConnections('127.0.0.7') <= 2);
    assert.ok(server.connections('127.0.0.7') >= 4, `at most 2 messages per connection: ${server.connections('127.0.0.7')} connections for 7 messages`);
    assert.deepEqual(shaper.admitted.find((k) => k.domain === 'one.test'), { source: '127.0.0.7', site: 'shared-host.test', domain: 'one.test' });
    assert.ok(shaper.limitsAsked.every((k) => k.source === '127.0.0.7' && k.site === 'shared-host.test'));
    assert.equal(shaper.observed.filter((o) => o.code === 250).length, 6);
    assert.ok(shaper.observed.some((o) => o.code === 550 && o.enhanced === '5.1.1'));
    assert.equal(shaper.sent.filter((s) => s === '127.0.0.7/default').length, 6);
    assert.deepEqual(shaper.bounces, [{ source: '127.0.0.7/default', recipientClass: true }]);
    assert.ok(shaper.pools.length > 0 && shaper.pools.every((p) => p === 'default' || p === 'paused'));
  });

  test('bounces count per message like sends: one bounce for a message with two unknown users; a full mailbox is not recipient-class', async () => {
    const before = shaper.bounces.length;
    const two = recordFor(['gone2@one.test', 'gone3@one.test']);
    await h.produce([two]);
    assert.equal((await outcome(two.messageId)).type, 'bounced');
    await waitFor(() => shaper.bounces.length > before, 10_000, 'the bounce counted');
    const full = recordFor(['full@one.test']);
    await h.produce([full]);
    assert.equal((await outcome(full.messageId)).type, 'bounced');
    await waitFor(() => shaper.bounces.length > before + 1, 10_000, 'the second bounce counted');
    assert.deepEqual(shaper.bounces.slice(before), [
      { source: '127.0.0.7/default', recipientClass: true },
      { source: '127.0.0.7/default', recipientClass: false },
    ]);
  });

  test('every source of the pool held back → deferred (POOL_UNAVAILABLE), nothing sent', async () => {
    const r = recordFor(['p@one.test'], { pool: 'paused' });
    await h.produce([r]);
    const e = await outcome(r.messageId);
    assert.equal(e.type, 'deferred');
    assert.match(e.reason ?? '', /^POOL_UNAVAILABLE/);
    assert.ok(!server.messages.some((m) => m.to.includes('p@one.test')));
  });

  test('admission refused → deferred (SHAPING_DEFERRED) to the shortest retry tier, whatever the attempt', async () => {
    const r = recordFor(['q@two.test'], { attempt: 3 });
    await h.produce([r]);
    const e = await outcome(r.messageId);
    assert.equal(e.type, 'deferred');
    assert.match(e.reason ?? '', /^SHAPING_DEFERRED/);
    assert.equal(e.site, 'shared-host.test');
    await waitFor(() => h.retries('1m').find((x) => x.messageId === r.messageId), 10_000, 'retry record in the 1m tier');
    assert.ok(!server.messages.some((m) => m.to.includes('q@two.test')));
  });

  test('the connection limit holds per (source, site) across the site\'s MX hosts', async () => {
    const rs = Array.from({ length: 8 }, (_, i) => recordFor([`s${i}@${i % 2 ? 'three' : 'four'}.test`]));
    // Connections open at both hosts at once, sampled at the servers while the messages go.
    let most = 0;
    const sampler = setInterval(() => (most = Math.max(most, site[0].openConnections('127.0.0.7') + site[1].openConnections('127.0.0.7'))), 1);
    await h.produce(rs);
    for (const r of rs) {
      const e = await outcome(r.messageId);
      assert.equal(e.type, 'sent', JSON.stringify(e));
      assert.equal(e.site, 'bigsite.test');
    }
    assert.equal(site[0].messages.length + site[1].messages.length, 8);
    assert.ok(site[0].messages.length > 0 && site[1].messages.length > 0);
    clearInterval(sampler);
    assert.equal(most, 1, 'never more than the site\'s one connection across both hosts');
  });
});
