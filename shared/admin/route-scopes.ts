/**
 * Which scope a route of the public APIs needs — one pure rule for the send API and the read API:
 * `/v1/admin/...` needs `admin`; reading (GET, HEAD: messages, stats, templates, suppressions,
 * dead letters) needs `read`; everything else (sending, storing a template, changing the
 * suppression list, replaying a dead letter) needs `send`.
 */
import type { ApiScope } from '../contracts/admin-record.js';

export function requiredScope(method: string, route: string): ApiScope {
  if (route === '/v1/admin' || route.startsWith('/v1/admin/')) return 'admin';
  return method === 'GET' || method === 'HEAD' ? 'read' : 'send';
}
