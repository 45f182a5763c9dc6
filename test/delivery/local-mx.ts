/**
 * Small MX hosts for delivery tests: a real `smtp-server` on a given 127.0.0.x address and port
 * that records, for every message, the peer (source) address, the EHLO name and the TLS protocol
 * — so pool routing and TLS are verified at the receiving end. STARTTLS: offered with
 * smtp-server's self-signed certificate (default), with a given certificate, or not at all.
 * (Stands in until the shared fake internet in test/helpers/fake-internet lands.)
 */
import { SMTPServer } from 'smtp-server';
import { waitFor } from '../helpers/broker.js';

export interface MxMessage {
  from: string;
  to: string[];
  peer: string;
  ehlo: string;
  tls: string | null;
  raw: Buffer;
}

export interface LocalMx {
  host: string;
  port: number;
  messages: MxMessage[];
  connections: number;
  /** Most connections open at once. */
  maxConcurrent: number;
  waitForMessages(n: number, timeoutMs?: number): Promise<MxMessage[]>;
  close(): Promise<void>;
}

export async function startLocalMx(opts: {
  host: string;
  port: number;
  starttls?: boolean;
  key?: string;
  cert?: string;
  /** Recipients refused at RCPT TO: address → reply (`550 5.1.1 No such user`). */
  refuse?: Record<string, string>;
  /** Connections counted across several servers (one site's MX hosts). */
  shared?: { open: number; max: number };
}): Promise<LocalMx> {
  const messages: MxMessage[] = [];
  const state = { connections: 0, open: 0, maxConcurrent: 0 };
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['AUTH'],
    hideSTARTTLS: opts.starttls === false,
    ...(opts.key && opts.cert ? { key: opts.key, cert: opts.cert } : {}),
    logger: false,
    onConnect(_session, cb) {
      state.connections++;
      state.maxConcurrent = Math.max(state.maxConcurrent, ++state.open);
      if (opts.shared) opts.shared.max = Math.max(opts.shared.max, ++opts.shared.open);
      cb();
    },
    onClose() {
      state.open--;
      if (opts.shared) opts.shared.open--;
    },
    onRcptTo(address, _session, cb) {
      const reply = opts.refuse?.[address.address];
      if (!reply) return cb();
      const m = /^(\d{3}) (.*)$/.exec(reply)!;
      cb(Object.assign(new Error(m[2]), { responseCode: Number(m[1]) }));
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const tls = session.secure && session.tlsOptions ? (session.tlsOptions as { version?: string }).version ?? 'unknown' : null;
        messages.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          peer: session.remoteAddress,
          ehlo: session.hostNameAppearsAs,
          tls,
          raw: Buffer.concat(chunks),
        });
        cb(null, 'queued');
      });
    },
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  return {
    host: opts.host,
    port: opts.port,
    messages,
    get connections() {
      return state.connections;
    },
    get maxConcurrent() {
      return state.maxConcurrent;
    },
    waitForMessages: (n, timeoutMs = 15_000) => waitFor(() => (messages.length >= n ? messages : undefined), timeoutMs, `${n} messages at ${opts.host}:${opts.port} (have ${messages.length})`),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
