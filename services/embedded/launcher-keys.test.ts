import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiKeyStore, generateApiKey, hashApiKey } from '../ingest/api-keys.js';
import { launcherApiKeys } from './launcher-keys.js';

test('launcherApiKeys: the user\'s keys keep working next to the demo key', () => {
  const mine = generateApiKey();
  const demo = generateApiKey();
  const store = new ApiKeyStore(launcherApiKeys([{ tenant: 'acme', keyHash: hashApiKey(mine) }], demo));
  assert.equal(store.authenticate(mine), 'acme');
  assert.equal(store.authenticate(demo), 'demo');
  assert.equal(store.size, 2);
});

test('launcherApiKeys: the demo key is listed once, even if the user already lists it', () => {
  const demo = generateApiKey();
  assert.deepEqual(launcherApiKeys([{ tenant: 'acme', keyHash: hashApiKey(demo) }], demo), [{ tenant: 'acme', keyHash: hashApiKey(demo) }]);
  assert.deepEqual(launcherApiKeys([], demo), [{ tenant: 'demo', keyHash: hashApiKey(demo) }]);
});

test('launcherApiKeys: the admin key manages (scope admin) and cannot send; the demo key sends and reads but does not manage', () => {
  const demo = generateApiKey();
  const admin = generateApiKey();
  const store = new ApiKeyStore(launcherApiKeys([], demo, admin));
  assert.equal(store.authorize(admin, 'admin'), 'demo');
  assert.equal(store.authorize(admin, 'send'), undefined);
  assert.equal(store.authorize(demo, 'send'), 'demo');
  assert.equal(store.authorize(demo, 'read'), 'demo');
  assert.equal(store.authorize(demo, 'admin'), undefined);
});
