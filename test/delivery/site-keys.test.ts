/**
 * Dispatch records keyed by site (for the renderer): domains on one provider's MX hosts share a
 * key, a hot site splits into shards by message id, a domain DNS cannot tell now keeps its name.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DnsResolver } from '../../services/dispatcher/routing/dns-resolver.js';
import { SiteKeys, shardOf } from '../../services/dispatcher/routing/site-keys.js';
import { dispatchRecords } from '../../services/renderer/dispatch-records.js';
import { checkRequest } from '../../services/renderer/request-checks.js';
import { emailRequest } from '../renderer/email-requests.js';
import { startFakeInternet, type FakeInternet } from '../helpers/fake-internet/index.js';

describe('site keys', () => {
  let net: FakeInternet;
  let keys: SiteKeys;

  before(async () => {
    net = await startFakeInternet();
    const dns = net.dns;
    for (const d of ['gmail.com', 'customer.example']) {
      dns.mx(d, [{ exchange: 'alt1.gmail-smtp-in.l.google.com', priority: 5 }, { exchange: 'gmail-smtp-in.l.google.com', priority: 5 }]);
    }
    dns.mx('acme.example', [{ exchange: 'acme-example.mail.protection.outlook.com', priority: 0 }]);
    dns.mx('small.example', [{ exchange: 'mx2.host.example', priority: 10 }, { exchange: 'mx1.host.example', priority: 10 }]);
    dns.behave('down.example', 'servfail');
    const resolver = new DnsResolver({ servers: dns.servers, timeoutMs: 1000, ttlFloorSeconds: 60, ttlCeilingSeconds: 3600 });
    keys = new SiteKeys({ resolver, sites: { '*.host.example': 'hosting-co' }, shardsOf: (site) => (site === 'gmail' ? 4 : 1) });
  });
  after(() => net.close());

  test('sites by MX hosts; the domain itself when DNS cannot tell', async () => {
    assert.equal(await keys.siteOf('gmail.com'), 'gmail');
    assert.equal(await keys.siteOf('customer.example'), 'gmail');
    assert.equal(await keys.siteOf('acme.example'), 'outlook');
    assert.equal(await keys.siteOf('small.example'), 'hosting-co');
    assert.equal(await keys.siteOf('down.example'), 'down.example');
    assert.equal(await keys.siteOf('nowhere.example'), 'nowhere.example');
  });

  test('a sharded site: key site#k, stable per message, spread over the shards', async () => {
    const shards = new Set<string>();
    for (let i = 0; i < 64; i++) {
      const m = await keys.keysFor(['gmail.com', 'customer.example', 'acme.example'], `msg-${i}`);
      assert.equal(m.get('gmail.com'), m.get('customer.example'), 'one message, one shard of the site');
      assert.equal(m.get('gmail.com'), `gmail#${shardOf(`msg-${i}`, 4)}`);
      assert.equal(m.get('acme.example'), 'outlook');
      shards.add(m.get('gmail.com')!);
    }
    assert.equal(shards.size, 4);
  });

  test('dispatchRecords keys each domain\'s record by the given key', async () => {
    const req = emailRequest({ to: [{ email: 'a@gmail.com' }, { email: 'b@customer.example' }, { email: 'c@down.example' }] });
    const plan = checkRequest(req).envelope!;
    const map = await keys.keysFor(plan.groups.map((g) => g.domain), req.messageId);
    const out = dispatchRecords(req, plan, 'Subject: x\r\n\r\nbody\r\n', undefined, map);
    const shard = `gmail#${shardOf(req.messageId, 4)}`;
    assert.deepEqual(out.map((r) => r.message.key), [shard, shard, 'down.example']);
    assert.deepEqual(dispatchRecords(req, plan, 'x').map((r) => r.message.key), ['gmail.com', 'customer.example', 'down.example']);
  });
});
