/**
 * Prometheus metrics of API keys, fed by the store's 'auth-failure' events and read from the
 * directory when scraped. Labels are bounded: reasons and scopes are fixed sets, tenants are
 * those an administrator created (or configured).
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ApiKeyStore, ApiScope, AuthFailureReason } from '../http/api-keys.js';
import type { AdminDirectory } from './admin-directory.js';

export function instrumentApiKeys(keys: ApiKeyStore, directory: AdminDirectory | undefined, registry: Registry): void {
  const registers = [registry];
  // Several stores may share a registry (stages run in one process in tests): register once, feed from all.
  const known = registry.getSingleMetric('postline_auth_failures_total') as Counter<'reason'> | undefined;
  if (known) {
    keys.on('auth-failure', (reason: AuthFailureReason) => known.inc({ reason }));
    return;
  }
  const failures = new Counter({
    name: 'postline_auth_failures_total',
    help: 'Requests refused for their API key, by reason: missing, unknown, revoked, or scope (the key lacks the scope the route needs)',
    labelNames: ['reason'],
    registers,
  });
  for (const reason of ['missing', 'unknown', 'revoked', 'scope'] satisfies AuthFailureReason[]) failures.inc({ reason }, 0);
  new Gauge({
    name: 'postline_api_keys',
    help: 'Live (not revoked) API keys created by administrators, by tenant and scope',
    labelNames: ['tenant', 'scope'],
    registers,
    collect() {
      this.reset();
      for (const [tenant, byScope] of directory?.liveKeyCounts() ?? []) for (const [scope, n] of byScope) this.set({ tenant, scope }, n);
    },
  });
  keys.on('auth-failure', (reason: AuthFailureReason, _scope?: ApiScope) => failures.inc({ reason }));
}
