/**
 * Sign-in, sign-out and (admin keys) switching tenant. Sign-in takes an API key of any scope,
 * checks it like the API does and seals it into the session cookie; the key is never logged
 * and never sent back to the browser. A failed sign-in says only that the key was not accepted.
 */
import type { FastifyInstance } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import type { ConsoleDeps } from '../console-app.js';
import { userOf } from '../console-app.js';
import { page } from '../console-views.js';
import { knownTenants } from '../page-data.js';
import { ConsoleDenied } from '../console-errors.js';

const SignInBody = Type.Object({ key: Type.String({ maxLength: 512 }), _csrf: Type.Optional(Type.String()) });
const SignInQuery = Type.Object({ ended: Type.Optional(Type.String({ maxLength: 16 })) });
const TenantBody = Type.Object({ tenant: Type.String({ minLength: 1, maxLength: 256 }), _csrf: Type.Optional(Type.String()), back: Type.Optional(Type.String({ maxLength: 256 })) });

const ENDED: Record<string, string> = {
  expired: 'Your session ended. Sign in again.',
  revoked: 'The key of your session is no longer valid (revoked). Sign in with another key.',
  out: 'You are signed out.',
};

export async function signInRoutes(app: FastifyInstance, deps: ConsoleDeps, now: () => number): Promise<void> {
  app.get<{ Querystring: Static<typeof SignInQuery> }>('/login', { config: { consoleScope: 'public' }, schema: { querystring: SignInQuery } }, async (req, reply) =>
    page(reply, 'sign-in.hbs', { title: 'Sign in', csrf: reply.generateCsrf(), notice: ENDED[req.query.ended ?? ''] }),
  );

  app.post<{ Body: Static<typeof SignInBody> }>('/login', { config: { consoleScope: 'public' }, schema: { body: SignInBody } }, async (req, reply) => {
    const key = req.body.key.trim();
    const who = deps.apiKeys.identify(key);
    if (!who) {
      req.log.info({ signIn: 'refused' }, 'console sign-in refused');
      return page(reply.code(401), 'sign-in.hbs', { title: 'Sign in', csrf: reply.generateCsrf(), error: 'That API key was not accepted.' });
    }
    const t = now();
    req.session.set('user', { key, createdAt: t, seenAt: t });
    req.log.info({ tenant: who.tenant, ...(who.keyId ? { keyId: who.keyId } : {}), scopes: who.scopes }, 'console sign-in');
    return reply.redirect(who.scopes.includes('read') ? '/console/' : who.scopes.includes('admin') ? '/console/keys' : '/console/templates', 303);
  });

  app.post('/logout', { config: { consoleScope: 'public' } }, async (req, reply) => {
    req.session.delete();
    return reply.redirect('/console/login?ended=out', 303);
  });

  app.post<{ Body: Static<typeof TenantBody> }>('/tenant', { config: { consoleScope: 'admin' }, schema: { body: TenantBody } }, async (req, reply) => {
    const user = userOf(req);
    if (!knownTenants(deps).includes(req.body.tenant)) throw new ConsoleDenied(`no tenant "${req.body.tenant}"`, 404);
    const s = req.session.get('user')!;
    req.session.set('user', { ...s, ...(req.body.tenant === user.who.tenant ? { tenant: undefined } : { tenant: req.body.tenant }) });
    const back = req.body.back && /^\/console\/[a-z-]*$/.test(req.body.back) ? req.body.back : '/console/';
    return reply.redirect(back, 303);
  });
}
