/**
 * POSTs one signed webhook over undici: a pooled Agent whose connections resolve through the
 * SSRF guard (the address checked is the address connected to), with a connect timeout, an
 * overall deadline, a response size cap (undici `maxResponseSize`), and no redirects (undici's
 * `request` does not follow them: a 3xx is a failed attempt like any non-2xx).
 */
import { Agent, request } from 'undici';
import type { SsrfGuard } from '../../shared/http/ssrf-guard.js';

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
    // A literal IP in the URL is connected to without a lookup: check it here.
    const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
    const problem = /^[\d.]+$|:/.test(host) ? this.opts.guard.addressProblem(host) : null;
    if (problem) return { ok: false, latencyMs: 0, error: `connection to ${host} (a ${problem} address) refused`, refused: true };
    try {
      const res = await request(url, {
        method: 'POST',
        dispatcher: this.agent,
        headers: { 'content-type': 'application/json', 'user-agent': 'Postline-Webhooks/1', ...headers },
        body,
        signal: AbortSignal.timeout(this.opts.timeoutMs),
      });
      // Read (bounded by maxResponseSize) so the connection can be reused.
      await res.body.dump({ limit: this.opts.maxResponseBytes });
      const ok = res.statusCode >= 200 && res.statusCode < 300;
      return { ok, status: res.statusCode, latencyMs: latency(), ...(ok ? {} : { error: `HTTP ${res.statusCode}` }) };
    } catch (err) {
      const e = err as Error & { code?: string };
      return { ok: false, latencyMs: latency(), error: `${e.code ?? e.name}: ${e.message}`, refused: e.code === 'SSRF_REFUSED' };
    }
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}
