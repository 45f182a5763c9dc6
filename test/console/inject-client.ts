/**
 * A browser-like client over `app.inject` for the console's HTTP-level tests: keeps the session
 * cookie as a browser would, reads the CSRF token from the page it is on, and follows nothing
 * by itself (tests assert the redirects).
 */
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';

export class InjectClient {
  cookie = '';
  csrf = '';

  constructor(private readonly app: FastifyInstance) {}

  private remember(res: LightMyRequestResponse): LightMyRequestResponse {
    const set = res.headers['set-cookie'];
    for (const c of Array.isArray(set) ? set : set ? [set] : []) {
      const [pair] = c.split(';');
      if (pair.startsWith('postline_console=')) this.cookie = /Max-Age=0|Expires=Thu, 01 Jan 1970/i.test(c) ? '' : pair;
    }
    const token = /name="_csrf" value="([^"]+)"/.exec(res.body)?.[1];
    if (token) this.csrf = token;
    return res;
  }

  async get(url: string, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
    return this.remember(await this.app.inject({ method: 'GET', url, headers: { ...(this.cookie ? { cookie: this.cookie } : {}), ...headers } }));
  }

  /** A form POST with this page's CSRF token unless `form._csrf` is given. */
  async post(url: string, form: Record<string, string | string[]> = {}, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
    const body = new URLSearchParams();
    for (const [k, v] of Object.entries({ _csrf: this.csrf, ...form })) for (const x of Array.isArray(v) ? v : [v]) body.append(k, x);
    return this.remember(
      await this.app.inject({ method: 'POST', url, payload: body.toString(), headers: { 'content-type': 'application/x-www-form-urlencoded', ...(this.cookie ? { cookie: this.cookie } : {}), ...headers } }),
    );
  }

  /** Signs in with `key`; returns the sign-in answer. */
  async signIn(key: string): Promise<LightMyRequestResponse> {
    await this.get('/console/login');
    return this.post('/console/login', { key });
  }
}
