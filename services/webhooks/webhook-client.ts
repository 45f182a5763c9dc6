/**
 * POSTs one signed webhook over undici: a pooled Agent whose connections resolve through the
 * SSRF guard (the address checked is the address connected to), with a connect timeout, a
 * deadline for the response headers and one for the body (undici's own timers: no timer per
 * request), a response size cap (undici `maxResponseSize`: the connection's parser fails the
 * request once more bytes came, with or without a Content-Length), and no redirects (a 3xx is a
 * failed attempt like any non-2xx).
 *
 * The request goes through the Agent's `dispatch` with a small handler (undici's documented
 * `onRequestStart`/`onResponse*` handler API) rather than `request()`: the attempt needs the
 * status and that the body was read to its end, not the body itself, so there is no body
 * stream, no promise inside undici and no async resource per request, and the response body is
 * dropped chunk by chunk as the parser hands it over. The URL is parsed once per URL (origin and
 * path kept with its SSRF verdict), not on every POST.
 */
import { Agent, type Dispatcher } from 'undici';
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

/** What one URL is, checked once: where to send, or why its literal IP host or scheme is refused. */
interface Target {
  origin: string;
  path: string;
  problem: string | null;
}

const roundMs = (ms: number): number => Math.round(ms * 10) / 10;

/**
 * One POST's handler: keeps the final status, drops the body chunks (the Agent's
 * `maxResponseSize` fails a body over the cap), and resolves the attempt's result once.
 */
class PostHandler implements Dispatcher.DispatchHandler {
  private status = 0;

  constructor(
    private readonly resolve: (r: PostResult) => void,
    private readonly started: number,
  ) {}

  /** Marks this as a handler of the onRequestStart/onResponse* API (undici checks for it). */
  onRequestStart(): void {}

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number): void {
    // 1xx informational answers come before the final one.
    if (statusCode >= 200) this.status = statusCode;
  }

  onResponseData(): void {}

  onResponseEnd(): void {
    const status = this.status;
    const latencyMs = roundMs(performance.now() - this.started);
    if (status >= 200 && status < 300) this.resolve({ ok: true, status, latencyMs });
    else this.resolve({ ok: false, status, latencyMs, error: `HTTP ${status}` });
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    const e = err as Error & { code?: string };
    const code = e.code ?? e.name;
    const error = code === 'UND_ERR_RES_EXCEEDED_MAX_SIZE' ? `RESPONSE_TOO_LARGE: ${e.message}` : `${code}: ${e.message}`;
    this.resolve({ ok: false, ...(this.status ? { status: this.status } : {}), latencyMs: roundMs(performance.now() - this.started), error, refused: code === 'SSRF_REFUSED' });
  }
}

export class WebhookClient {
  private readonly agent: Agent;
  /** Per URL, checked and parsed once (few URLs, used on every POST). */
  private readonly targets = new Map<string, Target>();

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

  post(url: string, body: string, headers: Record<string, string>): Promise<PostResult> {
    const started = performance.now();
    const target = this.targetOf(url);
    if (target.problem) return Promise.resolve({ ok: false, latencyMs: 0, error: `connection to ${new URL(url).hostname} refused: ${target.problem}`, refused: true });
    const list = ['content-type', 'application/json', 'user-agent', 'Postline-Webhooks/1'];
    for (const name in headers) list.push(name, headers[name]);
    return new Promise<PostResult>((resolve) => {
      this.agent.dispatch({ origin: target.origin, path: target.path, method: 'POST', headers: list, body }, new PostHandler(resolve, started));
    });
  }

  /** A literal IP in the URL is connected to without a lookup: it is checked here, with the scheme. */
  private targetOf(url: string): Target {
    let target = this.targets.get(url);
    if (target === undefined) {
      const parsed = new URL(url);
      const host = parsed.hostname.replace(/^\[|\]$/g, '');
      // The API checked the URL; a record written to email.webhooks by other means is checked here too.
      let problem: string | null;
      if (!this.opts.guard.schemeAllowed(parsed.protocol)) problem = `${parsed.protocol} URL (not allowed)`;
      else problem = /^[\d.]+$|:/.test(host) ? this.opts.guard.addressProblem(host) : null;
      if (this.targets.size > 10_000) this.targets.clear();
      target = { origin: parsed.origin, path: `${parsed.pathname}${parsed.search}`, problem };
      this.targets.set(url, target);
    }
    return target;
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}
