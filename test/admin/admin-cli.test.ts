/** `postline tenants`, `postline keys` and `postline domains add|list|remove` against a listening send API on the embedded broker. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { IngestHarness, KEYS } from '../ingest/ingest-harness.js';
import { hashApiKey } from '../../shared/http/api-keys.js';
import { runAdminCommand, type AdminResource } from '../../services/admin/admin-command.js';
import { runDomainsCommand } from '../../services/domains-command.js';

const ADMIN_KEY = 'pl_test_cli_admin_key_000111222';
let h: IngestHarness;
let url: string;

before(async () => {
  h = await IngestHarness.start();
  const keys = [...Object.entries(KEYS).map(([tenant, key]) => ({ tenant, keyHash: hashApiKey(key) })), { tenant: 'ops', keyHash: hashApiKey(ADMIN_KEY), scopes: ['admin'] }];
  url = (await h.ingest({ 'ingest.apiKeys': keys }, { listen: true })).address!;
});
after(async () => h.stop());

async function run(resource: AdminResource, key: string, ...argv: string[]): Promise<{ code: number; lines: string[]; errors: string[] }> {
  const lines: string[] = [];
  const errors: string[] = [];
  const io = { env: { POSTLINE_API_URL: url, POSTLINE_API_KEY: key }, fetch, out: (l: string) => lines.push(l), err: (l: string) => errors.push(l) };
  const code = resource === 'domains' ? await runDomainsCommand(argv, io) : await runAdminCommand(resource, argv, io);
  return { code, lines, errors };
}

test('tenants create, keys create (printed once), the key sends, keys list, keys revoke: the key then gets 401', async () => {
  assert.deepEqual((await run('tenants', ADMIN_KEY, 'create', 'acme/eu-2')).lines, ['created tenant acme/eu-2']);
  const listed = (await run('tenants', ADMIN_KEY, 'list', '--json')).lines.map((l) => JSON.parse(l));
  assert.ok(listed.some((t) => t.name === 'acme/eu-2' && t.source === 'admin'));
  const created = await run('keys', ADMIN_KEY, 'create', '--tenant', 'acme/eu-2', '--name', 'ci', '--scope', 'send');
  assert.equal(created.code, 0);
  const key = /\n {2}(pl_[0-9a-f]{16}_\S+)\n/.exec(created.lines[0])?.[1];
  assert.ok(key, created.lines[0]);
  assert.match(created.lines[0], /shown this once/);
  const post = () => fetch(`${url}/v1/emails`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify({ from: 'a@example.com', to: ['b@example.org'], subject: 's', text: 't' }) });
  assert.equal((await post()).status, 202);
  const keys = (await run('keys', ADMIN_KEY, 'list', '--tenant', 'acme/eu-2', '--json')).lines.map((l) => JSON.parse(l));
  assert.equal(keys.length, 1);
  assert.deepEqual(keys[0].scopes, ['send']);
  assert.equal(keys[0].key, undefined);
  assert.match((await run('keys', ADMIN_KEY, 'revoke', keys[0].id)).lines[0], /^revoked key [0-9a-f]{16} of tenant acme\/eu-2$/);
  assert.equal((await post()).status, 401);
  assert.match((await run('keys', ADMIN_KEY, 'list', '--tenant', 'acme/eu-2')).lines[0], /REVOKED/);
});

test('domains add, list, remove; a non-admin key is refused; usage errors exit 2', async () => {
  assert.deepEqual((await run('domains', ADMIN_KEY, 'add', 'mail.acme.example', '--tenant', 'acme')).lines, ['tenant acme may send from mail.acme.example']);
  assert.deepEqual((await run('domains', ADMIN_KEY, 'list', '--tenant', 'acme', '--json')).lines.map((l) => JSON.parse(l).domain), ['mail.acme.example']);
  assert.deepEqual((await run('domains', ADMIN_KEY, 'list', '--tenant', 'acme/eu')).lines, []);
  assert.equal((await run('domains', ADMIN_KEY, 'remove', 'mail.acme.example', '--tenant', 'acme')).code, 0);
  assert.deepEqual((await run('domains', ADMIN_KEY, 'list', '--tenant', 'acme')).lines, []);
  const refused = await run('keys', KEYS.acme, 'list');
  assert.equal(refused.code, 1);
  assert.match(refused.errors[0], /403 FORBIDDEN/);
  assert.equal((await run('keys', ADMIN_KEY, 'create', '--name', 'x')).code, 2, 'no --tenant');
  assert.equal((await run('domains', ADMIN_KEY, 'add', 'x.example')).code, 2, 'no --tenant');
  assert.equal((await run('tenants', '', 'list')).code, 2, 'no key');
});
