/**
 * The TCP side: length-prefixed frames in, responses out in request order per connection (as
 * Kafka guarantees), with each request handled as soon as it arrives so a long-polling Fetch
 * never holds up another connection (and a later request on its own connection ends it). A malformed, truncated or oversized frame closes only that
 * connection. A client that reads slowly is paused at the socket rather than buffered without
 * bound.
 */
import net from 'node:net';
import { EventEmitter } from 'node:events';
import { Reader, Writer, ProtocolError } from './protocol/primitives.js';
import { API_BY_KEY, ApiKey, type ApiSpec } from './protocol/apis.js';
import { decode, encode, type Message } from './protocol/schema.js';
import { ErrorCode } from './protocol/error-codes.js';

export interface RequestContext {
  apiKey: number;
  apiVersion: number;
  correlationId: number;
  clientId: string;
  clientHost: string;
  connectionId: number;
  /**
   * Calls `fn` once when a later request arrives on this connection; returns the unsubscriber.
   * Responses go out in request order, so a long-polling Fetch ahead of that request would hold
   * its answer back: it ends instead (kafkajs's consumer stops without waiting out its fetch by
   * sending one, see shared/kafka/fetch-wake.ts).
   */
  onLaterRequest(fn: () => void): () => void;
}

/** Returns the response body, or null for requests that get no response (Produce acks=0). */
export type Handler = (ctx: RequestContext, body: Message) => Promise<Message | null> | Message | null;

export interface ServerOptions {
  maxRequestBytes: number;
  /** Requests a connection may have in flight before its socket is paused. */
  maxInFlight: number;
}

interface Pending {
  done: boolean;
  chunks: Buffer[] | null;
}

/**
 * Emits 'request' (apiName, version, ms, bytesIn), 'bytesOut' (n), 'connectionError' (id, host, reason),
 * 'connectionClosed' (id).
 */
export class KafkaServer extends EventEmitter {
  private server: net.Server;
  private connections = new Set<net.Socket>();
  private nextConnectionId = 1;

  constructor(
    private readonly handlers: Map<number, Handler>,
    private readonly supported: ApiSpec[],
    private readonly opts: ServerOptions,
  ) {
    super();
    this.server = net.createServer((socket) => this.accept(socket));
  }

  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve((this.server.address() as net.AddressInfo).port);
      });
    });
  }

  private accept(socket: net.Socket): void {
    const id = this.nextConnectionId++;
    const host = socket.remoteAddress ?? '';
    this.connections.add(socket);
    socket.setNoDelay(true);
    const queue: Pending[] = [];
    let parts: Buffer[] = [];
    let buffered = 0;
    let inFlight = 0;
    let closed = false;
    const laterRequest = new Set<() => void>();
    const onLaterRequest = (fn: () => void): (() => void) => {
      laterRequest.add(fn);
      return () => laterRequest.delete(fn);
    };

    const fail = (reason: string): void => {
      if (closed) return;
      closed = true;
      this.emit('connectionError', id, host, reason);
      socket.destroy();
    };

    const flush = (): void => {
      while (queue.length > 0 && queue[0].done) {
        const p = queue.shift() as Pending;
        inFlight--;
        if (!p.chunks || closed) continue;
        let n = 0;
        socket.cork();
        for (const c of p.chunks) {
          socket.write(c);
          n += c.length;
        }
        socket.uncork();
        this.emit('bytesOut', n);
      }
      if (inFlight < this.opts.maxInFlight && socket.writableLength < 64 * 1024 * 1024 && socket.isPaused()) socket.resume();
    };

    socket.on('drain', flush);
    socket.on('data', (data: Buffer) => {
      parts.push(data);
      buffered += data.length;
      while (buffered >= 4) {
        if (parts[0].length < 4) parts = [Buffer.concat(parts)];
        const size = parts[0].readInt32BE(0);
        if (size < 8 || size > this.opts.maxRequestBytes) return fail(`bad frame length ${size}`);
        if (buffered < 4 + size) break;
        // Concatenate only once the whole frame is here, so a large request costs one copy.
        const head = parts.length === 1 ? parts[0] : Buffer.concat(parts);
        const frame = head.subarray(4, 4 + size);
        const rest = head.subarray(4 + size);
        parts = rest.length > 0 ? [rest] : [];
        buffered = rest.length;
        if (laterRequest.size > 0) {
          const waiting = [...laterRequest];
          laterRequest.clear();
          for (const fn of waiting) fn();
        }
        const pending: Pending = { done: false, chunks: null };
        queue.push(pending);
        inFlight++;
        this.handle(frame, id, host, onLaterRequest).then(
          (chunks) => {
            pending.done = true;
            pending.chunks = chunks;
            flush();
          },
          (err: Error) => fail(err instanceof ProtocolError ? err.message : `handler failed: ${err.stack ?? err.message}`),
        );
        if (closed) return;
      }
      if (inFlight >= this.opts.maxInFlight || socket.writableLength >= 64 * 1024 * 1024) socket.pause();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      closed = true;
      this.connections.delete(socket);
      this.emit('connectionClosed', id);
    });
  }

  private async handle(frame: Buffer, connectionId: number, clientHost: string, onLaterRequest: RequestContext['onLaterRequest']): Promise<Buffer[] | null> {
    const started = performance.now();
    const r = new Reader(frame);
    const apiKey = r.int16();
    const apiVersion = r.int16();
    const correlationId = r.int32();
    const clientId = r.nstring() ?? '';
    const api = API_BY_KEY.get(apiKey);
    const w = new Writer().int32(0).int32(correlationId);
    if (!api || apiVersion < api.min || apiVersion > api.max) {
      this.emit('unsupported', apiKey, apiVersion, clientId);
      // ApiVersions must answer with its v0 layout and the versions we do support, so the
      // client can retry with one of them (librdkafka probes with a newer version first).
      if (apiKey === ApiKey.ApiVersions) {
        encode(API_BY_KEY.get(apiKey)!.response, 0, this.apiVersionsBody(ErrorCode.UNSUPPORTED_VERSION), w);
        return this.frame(w);
      }
      // Any other API at a version we did not advertise has no response layout a client could
      // decode (a bare error code is not one); Kafka closes the connection, and so do we.
      throw new ProtocolError(`unsupported API ${apiKey} version ${apiVersion}`);
    }
    const body = decode(api.request, apiVersion, r);
    const ctx: RequestContext = { apiKey, apiVersion, correlationId, clientId, clientHost, connectionId, onLaterRequest };
    const handler = this.handlers.get(apiKey) as Handler;
    const result = await handler(ctx, body);
    this.emit('request', api.name, apiVersion, performance.now() - started, frame.length + 4);
    if (result === null) return null;
    encode(api.response, apiVersion, result, w);
    return this.frame(w);
  }

  private frame(w: Writer): Buffer[] {
    const chunks = w.finish();
    chunks[0].writeInt32BE(w.length - 4, 0);
    return chunks;
  }

  apiVersionsBody(errorCode = 0): Message {
    return {
      errorCode,
      apiKeys: this.supported.map((a) => ({ apiKey: a.key, minVersion: a.min, maxVersion: a.max })),
      throttleTimeMs: 0,
    };
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      for (const s of this.connections) s.destroy();
    });
  }
}
