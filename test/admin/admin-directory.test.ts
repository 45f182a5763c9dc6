/**
 * The administration directory and the API-key store over it, on an in-memory store that
 * applies writes like the compacted table does: tenants whose names are prefixes of each other
 * (`acme`, `acme/eu`) never share keys or domains; keys are found by id, refused once revoked,
 * and their last use is written at most once per interval.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AdminDirectory, normalizeSenderDomain, type AdminStore } from '../../shared/admin/admin-directory.js';
import { requiredScope } from '../../shared/admin/route-scopes.js';
import { ApiKeyStore, hashApiKey, keyIdOf } from '../../shared/http/api-keys.js';
import { AdminRecordContract, adminKey, parseAdminKey, type AdminRecord } from '../../shared/contracts/admin-record.js';
import { configuredSenderDomains, senderDomainProblem, withAdministeredDomains } from '../../shared/sender-domains.js';
import { ValidationError } from '../../shared/errors.js';

/** Applies writes at once (as a CompactedTable's put resolves after applying) and counts them by kind. */
function memoryStore(): { store: AdminStore; writes: string[]; attach(d: AdminDirectory): void } {
  let dir: AdminDirectory | undefined;
  const writes: string[] = [];
  return {
    writes,
    attach: (d) => (dir = d),
    store: {
      async put(key: string, value: AdminRecord | null) {
        // What the topic would carry: encoded and decoded again.
        const decoded = value === null ? undefined : AdminRecordContract.decode(AdminRecordContract.encode(value));
        writes.push(key.split('\u0000')[0]);
        dir!.apply(key, decoded);
      },
      async catchUp() {},
    },
  };
}

function setup(opts: { now?: () => Date; lastUsedIntervalMs?: number } = {}) {
  const m = memoryStore();
  const directory = new AdminDirectory(m.store, opts);
  m.attach(directory);
  return { directory, writes: m.writes };
}

test('record keys of acme and acme/eu never collide, and parse back', () => {
  assert.notEqual(adminKey.domain('acme', 'eu/x.com'), adminKey.domain('acme/eu', 'x.com'));
  assert.deepEqual(parseAdminKey(adminKey.domain('acme/eu', 'x.com')), { kind: 'domain', tenant: 'acme/eu', domain: 'x.com' });
  assert.deepEqual(parseAdminKey(adminKey.tenant('acme/eu')), { kind: 'tenant', id: 'acme/eu' });
  assert.equal(parseAdminKey('nonsense'), undefined);
  assert.equal(parseAdminKey('other\u0000x'), undefined);
});

test('tenants are created once; acme and acme/eu are two tenants', async () => {
  const { directory } = setup();
  await directory.createTenant('acme');
  await directory.createTenant('acme/eu');
  await assert.rejects(directory.createTenant('acme'), (e: Error & { code?: string }) => e.code === 'CONFLICT');
  await assert.rejects(directory.createTenant('bad\nname'), ValidationError);
  assert.deepEqual(directory.listTenants().map((t) => t.name), ['acme', 'acme/eu']);
});

test('a created key authenticates its own tenant with its scopes, by id; its secret is stored only as a digest', async () => {
  const { directory } = setup();
  const a = await directory.createKey({ tenant: 'acme', name: 'ci', scopes: ['send'] });
  const eu = await directory.createKey({ tenant: 'acme/eu', name: 'ci', scopes: ['read', 'admin'] });
  assert.match(a.key, /^pl_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
  assert.equal(keyIdOf(a.key), a.view.id);
  assert.equal(directory.keyRecord(a.view.id)!.keyHash, hashApiKey(a.key));
  assert.ok(!JSON.stringify(directory.listKeys()).includes(a.key), 'no listing carries the key');
  const store = new ApiKeyStore([{ tenant: 'acme', keyHash: hashApiKey('boot') }], directory);
  assert.deepEqual(store.identify(a.key), { tenant: 'acme', scopes: ['send'], keyId: a.view.id });
  assert.deepEqual(store.identify(eu.key), { tenant: 'acme/eu', scopes: ['read', 'admin'], keyId: eu.view.id });
  assert.deepEqual(store.identify('boot'), { tenant: 'acme', scopes: ['send', 'read'] });
  assert.equal(store.authenticate(a.key), 'acme');
  assert.equal(store.authorize(a.key, 'send'), 'acme');
  assert.equal(store.authorize(a.key, 'read'), undefined);
  assert.equal(store.authorize(eu.key, 'admin'), 'acme/eu');
  // Same id, another secret: refused (the digest is compared, not the id).
  const forged = `pl_${a.view.id}_${'A'.repeat(43)}`;
  assert.equal(store.authenticate(forged), undefined);
  assert.deepEqual(directory.listKeys('acme').map((k) => k.id), [a.view.id]);
  assert.deepEqual(directory.listKeys('acme/eu').map((k) => k.id), [eu.view.id]);
  assert.equal(store.size, 3);
});

test('a revoked key is refused at once and listed as revoked; failures are reported by reason', async () => {
  const { directory } = setup();
  const store = new ApiKeyStore([], directory);
  const failures: string[] = [];
  store.on('auth-failure', (reason: string) => failures.push(reason));
  const { view, key } = await directory.createKey({ tenant: 'acme', name: 'old', scopes: ['send', 'read'] });
  assert.equal(store.authenticate(key), 'acme');
  const revoked = await directory.revokeKey(view.id);
  assert.ok(revoked?.revokedAt);
  assert.equal(store.authenticate(key), undefined);
  assert.equal(await directory.revokeKey('0123456789abcdef'), undefined);
  assert.equal(store.authenticate(''), undefined);
  assert.equal(store.authenticate('pl_nope'), undefined);
  assert.equal(store.authorize((await directory.createKey({ tenant: 'acme', name: 'r', scopes: ['read'] })).key, 'send'), undefined);
  assert.deepEqual(failures, ['revoked', 'missing', 'unknown', 'scope']);
  assert.equal(store.size, 1);
  assert.deepEqual(Object.fromEntries([...directory.liveKeyCounts()].map(([t, m]) => [t, Object.fromEntries(m)])), { acme: { read: 1 } });
});

test('last use is written at most once per interval per key, not per request', async () => {
  let now = Date.parse('2026-12-03T12:00:00Z');
  const { directory, writes } = setup({ now: () => new Date(now), lastUsedIntervalMs: 60_000 });
  const store = new ApiKeyStore([], directory);
  const a = await directory.createKey({ tenant: 'acme', name: 'a', scopes: ['send'] });
  const b = await directory.createKey({ tenant: 'acme/eu', name: 'b', scopes: ['send'] });
  const used = () => writes.filter((w) => w === 'used').length;
  for (let i = 0; i < 100; i++) store.authenticate(a.key);
  await Promise.resolve();
  assert.equal(used(), 1);
  assert.equal(directory.view(a.view.id)!.lastUsedAt, '2026-12-03T12:00:00.000Z');
  store.authenticate(b.key);
  assert.equal(used(), 2, 'each key has its own minute');
  now += 59_000;
  store.authenticate(a.key);
  assert.equal(used(), 2);
  now += 1_000;
  store.authenticate(a.key);
  assert.equal(used(), 3);
  assert.equal(directory.view(a.view.id)!.lastUsedAt, '2026-12-03T12:01:00.000Z');
});

test('sender domains: per tenant (acme is not acme/eu), normalized, joined with configured ones live', async () => {
  const { directory } = setup();
  const policy = withAdministeredDomains(configuredSenderDomains({ acme: ['acme.com'] }), directory);
  assert.equal(senderDomainProblem(policy, 'acme/eu', 'x@anything.org'), undefined, 'a tenant named nowhere may use any domain');
  assert.equal((await directory.addDomain('acme/eu', 'Mail.EU.Example')).domain, 'mail.eu.example');
  await directory.addDomain('acme', '*.bücher.example');
  assert.deepEqual(directory.domainsOf('acme'), ['*.xn--bcher-kva.example']);
  assert.deepEqual(directory.domainsOf('acme/eu'), ['mail.eu.example']);
  assert.equal(senderDomainProblem(policy, 'acme', 'a@acme.com'), undefined);
  assert.equal(senderDomainProblem(policy, 'acme', 'a@news.xn--bcher-kva.example'), undefined);
  assert.match(senderDomainProblem(policy, 'acme', 'a@mail.eu.example') ?? '', /not one of this tenant's sender domains/);
  assert.equal(senderDomainProblem(policy, 'acme/eu', 'a@mail.eu.example'), undefined);
  assert.match(senderDomainProblem(policy, 'acme/eu', 'a@acme.com') ?? '', /not one of/);
  assert.equal(await directory.removeDomain('acme', 'mail.eu.example'), false, "acme cannot remove acme/eu's domain");
  assert.equal(await directory.removeDomain('acme/eu', 'MAIL.eu.example'), true);
  assert.equal(directory.domainsOf('acme/eu'), undefined);
  assert.equal(senderDomainProblem(policy, 'acme/eu', 'a@anything.org'), undefined, 'removed: back to any domain');
  assert.throws(() => normalizeSenderDomain('not a domain'), ValidationError);
  assert.throws(() => normalizeSenderDomain('localhost'), ValidationError);
});

test('records that do not name themselves as their key does are ignored', () => {
  const { directory } = setup();
  const at = '2026-12-03T12:00:00.000Z';
  directory.apply(adminKey.tenant('acme'), { schemaVersion: 1, kind: 'tenant', name: 'acme/eu', createdAt: at });
  directory.apply(adminKey.domain('acme', 'x.com'), { schemaVersion: 1, kind: 'domain', tenant: 'acme/eu', domain: 'x.com', createdAt: at });
  assert.deepEqual(directory.listTenants(), []);
  assert.equal(directory.domainsOf('acme'), undefined);
  assert.equal(directory.domainsOf('acme/eu'), undefined);
});

test('route scopes: admin for /v1/admin, read for GET and HEAD, send for every other method', () => {
  const cases: Array<[string, string, string]> = [
    ['POST', '/v1/emails', 'send'],
    ['POST', '/v1/emails/batch', 'send'],
    ['GET', '/v1/messages/:id', 'read'],
    ['GET', '/v1/stats', 'read'],
    ['HEAD', '/v1/messages', 'read'],
    ['GET', '/v1/templates', 'read'],
    ['PUT', '/v1/templates/:name', 'send'],
    ['DELETE', '/v1/suppressions/:address', 'send'],
    ['GET', '/v1/admin/keys', 'admin'],
    ['POST', '/v1/admin/tenants', 'admin'],
    ['DELETE', '/v1/admin/keys/:id', 'admin'],
    ['GET', '/v1/administrators', 'read'],
  ];
  for (const [method, route, scope] of cases) assert.equal(requiredScope(method, route), scope, `${method} ${route}`);
});
