/**
 * An HTTP endpoint on loopback that records every request (method, path, headers, body) and
 * answers as scripted — a status per request, optionally late — for webhook delivery tests.
 *
 *   const hook = await startHttpReceiver({ respond: (req, i) => (i < 2 ? 503 : 200) });
 *   ... POST to hook.url ...
 *   await hook.waitForRequests(3);
 */
import http from 'node:http';
import type net from 'node:net';
import { waitFor } from '../broker.js';

export interface ReceivedRequest {
  method: string;
  /** Path with query string, as sent. */
  path: string;
  /** Header names lower-case (Node's `IncomingMessage.headers`). */
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  at: number;
}

/** The answer to one request: a status, or a status with body, headers and a delay. */
export type HttpReply = number | { status: number; body?: string | Buffer; headers?: Record<string, string>; delayMs?: number };

export type Responder = (request: ReceivedRequest, index: number) => HttpReply;

export interface HttpReceiverOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (a random port). */
  port?: number;
  /** Default: 200 with an empty body. `index` counts requests from 0. */
  respond?: Responder;
}

export class FakeHttpReceiver {
  /** Requests whose body arrived in full, in order. */
  readonly requests: ReceivedRequest[] = [];
  private readonly sockets = new Set<net.Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;

  /** @internal use {@link startHttpReceiver} */
  constructor(
    readonly host: string,
    readonly port: number,
    private readonly server: http.Server,
    private responder: Responder,
  ) {
    server.on('connection', (socket: net.Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    server.on('request', (req, res) => this.handle(req, res));
  }

  /** `http://host:port` */
  get url(): string {
    return `http://${this.host}:${this.port}`;
  }

  /** Replaces the script for the requests that follow. */
  respond(responder: Responder): void {
    this.responder = responder;
  }

  /** Waits until at least `n` requests arrived; returns them all. */
  async waitForRequests(n: number, timeoutMs = 10_000): Promise<ReceivedRequest[]> {
    await waitFor(() => this.requests.length >= n, timeoutMs, `${n} HTTP requests at ${this.url}`);
    return this.requests;
  }

  /** Stops listening, drops open connections and pending delayed answers. Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const timer of this.timers) clearTimeout(timer);
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const request: ReceivedRequest = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks), at: Date.now() };
      const index = this.requests.push(request) - 1;
      const reply = this.responder(request, index);
      const { status, body, headers, delayMs } = typeof reply === 'number' ? { status: reply, body: undefined, headers: undefined, delayMs: 0 } : reply;
      const send = (): void => {
        res.writeHead(status, headers).end(body);
      };
      if (!delayMs) return send();
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        send();
      }, delayMs);
      this.timers.add(timer);
    });
  }
}

/** Starts a receiver on 127.0.0.1 (or `host`) at a random port. */
export async function startHttpReceiver(opts: HttpReceiverOptions = {}): Promise<FakeHttpReceiver> {
  const host = opts.host ?? '127.0.0.1';
  const server = http.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  return new FakeHttpReceiver(host, (server.address() as net.AddressInfo).port, server, opts.respond ?? (() => 200));
}
