import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiKeyStore, bearerToken, generateApiKey, hashApiKey, readApiKeysFile } from './api-keys.js';
import { ConfigError } from '../config-loader.js';
import { loadPostlineConfig } from '../config.js';

test('hashApiKey gives the configured sha256:<hex> form', () => {
  assert.equal(hashApiKey('abc'), 'sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  const key = generateApiKey();
  assert.match(key, /^pl_[A-Za-z0-9_-]{43}$/);
  assert.notEqual(generateApiKey(), key);
});

test('a key authenticates its own tenant only; unknown and empty keys none', () => {
  const store = new ApiKeyStore([
    { tenant: 'acme', keyHash: hashApiKey('key-a') },
    { tenant: 'globex', keyHash: hashApiKey('key-g') },
  ]);
  assert.equal(store.authenticate('key-a'), 'acme');
  assert.equal(store.authenticate('key-g'), 'globex');
  assert.equal(store.authenticate('key-x'), undefined);
  assert.equal(store.authenticate(''), undefined);
  assert.equal(store.authenticate('key-a '), undefined);
  assert.equal(new ApiKeyStore([]).authenticate('key-a'), undefined);
});

test('bearerToken reads only the Bearer scheme', () => {
  const cases: Array<[string | undefined, string | undefined]> = [
    ['Bearer abc', 'abc'],
    ['bearer  abc ', 'abc'],
    ['Basic abc', undefined],
    ['Bearer', undefined],
    ['Bearer a b', undefined],
    [undefined, undefined],
  ];
  for (const [header, token] of cases) assert.equal(bearerToken(header), token, String(header));
});

test('the keys file is validated and every problem named', () => {
  const good = JSON.stringify([{ tenant: 'acme', keyHash: hashApiKey('k') }]);
  assert.deepEqual(readApiKeysFile('keys.json', () => good), [{ tenant: 'acme', keyHash: hashApiKey('k') }]);
  assert.throws(() => readApiKeysFile('keys.json', () => '{oops'), (e: unknown) => e instanceof ConfigError && /keys\.json/.test(e.message));
  assert.throws(
    () => readApiKeysFile('keys.json', () => JSON.stringify([{ tenant: 'acme', keyHash: 'plain-text-key' }])),
    (e: unknown) => e instanceof ConfigError && /keyHash/.test(e.message),
  );
});

test('POSTLINE_INGEST_API_KEYS is read as JSON and a plain-text key is refused at start-up', () => {
  const keyHash = hashApiKey('k');
  const config = loadPostlineConfig({ env: { POSTLINE_INGEST_API_KEYS: JSON.stringify([{ tenant: 'acme', keyHash }]) } });
  assert.deepEqual(config.ingest.apiKeys, [{ tenant: 'acme', keyHash }]);
  assert.throws(
    () => loadPostlineConfig({ env: { POSTLINE_INGEST_API_KEYS: JSON.stringify([{ tenant: 'acme', keyHash: 'k' }]) } }),
    (e: unknown) => e instanceof ConfigError && /POSTLINE_INGEST_API_KEYS/.test(e.message),
  );
});

test('bootstrap keys may send and read unless their entry lists scopes; admin only when listed; a bad scope fails start-up', () => {
  const keyHash = hashApiKey('ops-key');
  const config = loadPostlineConfig({ env: { POSTLINE_INGEST_API_KEYS: JSON.stringify([{ tenant: 'acme', keyHash: hashApiKey('k') }, { tenant: 'ops', keyHash, scopes: ['admin'] }]) } });
  const store = new ApiKeyStore(config.ingest.apiKeys);
  assert.deepEqual(store.identify('k'), { tenant: 'acme', scopes: ['send', 'read'] });
  assert.equal(store.authorize('k', 'admin'), undefined);
  assert.equal(store.authorize('ops-key', 'admin'), 'ops');
  assert.equal(store.authorize('ops-key', 'send'), undefined);
  assert.throws(
    () => loadPostlineConfig({ env: { POSTLINE_INGEST_API_KEYS: JSON.stringify([{ tenant: 'ops', keyHash, scopes: ['root'] }]) } }),
    (e: unknown) => e instanceof ConfigError && /POSTLINE_INGEST_API_KEYS/.test(e.message),
  );
});
