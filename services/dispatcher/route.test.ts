import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadPostlineConfig } from '../../shared/config.js';
import { parseHostPort, relayRoute, route } from './route.js';

test('parseHostPort', () => {
  const cases: Array<[string, { host: string; port: number }]> = [
    ['relay.internal', { host: 'relay.internal', port: 587 }],
    ['relay.internal:2525', { host: 'relay.internal', port: 2525 }],
    ['10.0.0.5:25', { host: '10.0.0.5', port: 25 }],
    ['[::1]:2525', { host: '::1', port: 2525 }],
    ['[::1]', { host: '::1', port: 587 }],
    [' spaced:26 ', { host: 'spaced', port: 26 }],
  ];
  for (const [spec, expected] of cases) assert.deepEqual(parseHostPort(spec, 587), expected, spec);
});

test('relayRoute: primary first, then fallbacks (deduplicated), sharing TLS and auth', () => {
  const config = loadPostlineConfig({
    env: {
      POSTLINE_DISPATCHER_RELAY_HOST: 'primary',
      POSTLINE_DISPATCHER_RELAY_PORT: '2525',
      POSTLINE_DISPATCHER_RELAY_FALLBACK_HOSTS: 'backup1, backup2:26, primary:2525',
      POSTLINE_DISPATCHER_RELAY_USER: 'u',
      POSTLINE_DISPATCHER_RELAY_PASSWORD: 'p',
      POSTLINE_DISPATCHER_RELAY_REQUIRE_TLS: 'true',
    },
  });
  const r = relayRoute(config.dispatcher.relay);
  assert.equal(r.name, 'relay');
  assert.deepEqual(
    r.hosts.map((h) => h.key),
    ['primary:2525', 'backup1:2525', 'backup2:26'],
  );
  for (const h of r.hosts) {
    assert.deepEqual(h.auth, { user: 'u', pass: 'p' });
    assert.equal(h.requireTLS, true);
  }
  assert.equal(route({ domain: 'example.org' }, { relay: r }), r);
});

test('relayRoute: no auth when no user is configured', () => {
  const config = loadPostlineConfig({ env: {}, overrides: { 'dispatcher.relay.host': 'relay' } });
  const [h] = relayRoute(config.dispatcher.relay).hosts;
  assert.equal(h.auth, undefined);
  assert.equal(h.key, 'relay:587');
});
