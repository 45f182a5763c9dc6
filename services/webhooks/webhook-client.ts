/**
 * POSTs one signed webhook over undici: a pooled Agent whose connections resolve through the
 * SSRF guard (the address checked is the address connected to), with a connect timeout, a
 * deadline for the response headers and one for the body (undici's own timers: no timer per
 * request), a response size cap (undici `maxResponseSize`), and no redirects (undici's
 * `request` does not follow them: a 3xx is a failed attempt like any non-2xx).
 */
import { Agent, request } from 'undici';
import type { SsrfGuard } from '../../shared/http/ssrf-guard.js';

/**
 * Reads a body of unknown length (chunked) and drops it, counting; stops past `max`. A body with
 * a Content-Length goes through undici's `dump` instead, which is cheaper per request.
 */
function drain(body: NodeJS.ReadableStream & { destroy(): void }, max: number): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let n = 0;
    body
      .on('data', (chunk: Buffer) => {
        n += chunk.length;
        if (n > max) body.destroy();
      })
      .on('error', reject)
      .on('end', () => resolve(n))
      .on('close', () => resolve(n));
  });
}

export interface PostResult {
  ok: boolean;
  status?: number;
  latencyMs: number;
  /** Why the attempt failed (no status: the connection or the deadline). */
  error?: string;
  /** The failure can never succeed (the SSRF guard refused the address). */
  refused?: boolean;
}

export interface WebhookClientOptions {
  guard: SsrfGuard;
  timeoutMs: number;
  connectTimeoutMs: number;
  maxResponseBytes: number;
  /** Connections kept per origin (default 32). */
  connections?: number;
}

export class WebhookClient {
  private readonly agent: Agent;
  /** Per URL: why its literal IP host is refused, or null (few URLs, checked on every POST). */
  private readonly literalChecks = new Map<string, string | null>();

  constructor(private readonly opts: WebhookClientOptions) {
    this.agent = new Agent({
      connect: { timeout: opts.connectTimeoutMs, lookup: opts.guard.lookup as never },
      connections: opts.connections ?? 32,
      headersTimeout: opts.timeoutMs,
      bodyTimeout: opts.timeoutMs,
      maxResponseSize: opts.maxResponseBytes,
      keepAliveTimeout: 30_000,
    });
  }

  async post(url: string, body: string, headers: Record<string, string>): Promise<PostResult> {
    const started = performance.now();
    const latency = (): number => Math.round((performance.now() - started) * 10) / 10;
    const problem = this.literalProblem(url);
    if (problem) return { ok: false, latencyMs: 0, error: `connection to ${new URL(url).hostname} refused: ${problem}`, refused: true };
    try {
      const res = await request(url, {
        method: 'POST',
        dispatcher: this.agent,
        headers: { 'content-type': 'application/json', 'user-agent': 'Postline-Webhooks/1', ...headers },
        body,
      });
      // Read (and drop) the body so the connection can be reused; a larger answer fails the attempt.
      const max = this.opts.maxResponseBytes;
      const declared = Number(res.headers['content-length'] ?? Number.NaN);
      if (declared > max) {
        res.body.destroy();
        return { ok: false, status: res.statusCode, latencyMs: latency(), error: `RESPONSE_TOO_LARGE: the response body (${declared} bytes) exceeds ${max} bytes` };
      }
      if (Number.isFinite(declared)) await res.body.dump({ limit: max + 1 });
      else if ((await drain(res.body, max)) > max) return { ok: false, status: res.statusCode, latencyMs: latency(), error: `RESPONSE_TOO_LARGE: the response body exceeds ${max} bytes` };
      const ok = res.statusCode >= 200 && res.statusCode < 300;
      return { ok, status: res.statusCode, latencyMs: latency(), ...(ok ? {} : { error: `HTTP ${res.statusCode}` }) };
    } catch (err) {
      const e = err as Error & { code?: string };
      return { ok: false, latencyMs: latency(), error: `${e.code ?? e.name}: ${e.message}`, refused: e.code === 'SSRF_REFUSED' };
    }
  }

  /** A literal IP in the URL is connected to without a lookup: it is checked here. */
  private literalProblem(url: string): string | null {
    let problem = this.literalChecks.get(url);
    if (problem === undefined) {
      const parsed = new URL(url);
      const host = parsed.hostname.replace(/^\[|\]$/g, '');
      // The API checked the URL; a record written to email.webhooks by other means is checked here too.
      if (!this.opts.guard.schemeAllowed(parsed.protocol)) problem = `${parsed.protocol} URL (not allowed)`;
      else problem = /^[\d.]+$|:/.test(host) ? this.opts.guard.addressProblem(host) : null;
      if (this.literalChecks.size > 10_000) this.literalChecks.clear();
      this.literalChecks.set(url, problem);
    }
    return problem;
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}
