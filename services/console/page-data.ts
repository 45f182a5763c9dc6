/** What every console page's layout needs: the user, the navigation, the CSRF token, the tenants an admin may switch to. */
import type { FastifyRequest } from 'fastify';
import type { ConsoleDeps, ConsoleUser } from './console-app.js';

export const NAV = [
  { id: 'overview', label: 'Overview', href: '/console/' },
  { id: 'messages', label: 'Messages', href: '/console/messages' },
  { id: 'templates', label: 'Templates', href: '/console/templates' },
  { id: 'dead-letters', label: 'Dead letters', href: '/console/dead-letters' },
  { id: 'suppressions', label: 'Suppressions', href: '/console/suppressions' },
  { id: 'webhooks', label: 'Webhooks', href: '/console/webhooks' },
  { id: 'health', label: 'Pools & sites', href: '/console/health' },
  { id: 'keys', label: 'Keys', href: '/console/keys' },
] as const;

/** Tenants an admin can switch to: administered ones and those of configured keys. */
export function knownTenants(deps: Pick<ConsoleDeps, 'directory' | 'apiKeys'>): string[] {
  return [...new Set([...deps.directory.listTenants().map((t) => t.name), ...deps.apiKeys.bootstrapTenants()])].sort();
}

export function pageData(req: FastifyRequest, deps: ConsoleDeps, active: string, title: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const user = req.consoleUser as ConsoleUser;
  const admin = user.can('admin');
  return {
    title,
    signedIn: true,
    nav: NAV.filter((n) => n.id !== 'webhooks' || deps.webhooks).map((n) => ({ ...n, current: n.id === active })),
    tenant: user.tenant,
    keyTenant: user.who.tenant,
    switched: user.tenant !== user.who.tenant,
    can: { read: user.can('read'), send: user.can('send'), admin },
    scopes: user.who.scopes.join(', '),
    csrf: user.csrf,
    hxHeaders: JSON.stringify({ 'x-csrf-token': user.csrf }),
    tenants: admin ? knownTenants(deps).map((t) => ({ name: t, current: t === user.tenant })) : [],
    ...extra,
  };
}
