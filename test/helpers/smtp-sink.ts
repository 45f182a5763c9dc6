/**
 * A scripted SMTP sink for tests: a real `smtp-server` on 127.0.0.1 (free port) that answers
 * each recipient as a script says — 250, 421, 451, 550, never (hang), stall or drop the
 * connection mid-DATA or after DATA — refuses or ignores connections on demand, records every
 * delivered message (envelope + raw bytes as received) and counts connections. Hostile relays
 * too: a reply without a code (or any raw line) to MAIL FROM, RCPT TO or after DATA, a TCP reset
 * mid-DATA.
 *
 *   const sink = await startSmtpSink({ script: (rcpt) => (rcpt.startsWith('bad') ? 550 : 250) });
 *   ... point the code under test at sink.host / sink.port ...
 *   await sink.waitForMessages(10);
 *   await sink.close();
 */
import type net from 'node:net';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import { SMTPConnection as ServerConnection } from 'smtp-server/lib/smtp-connection.js';
import { waitFor } from './broker.js';

/**
 * What the sink does with one recipient (or, for `mail`, with MAIL FROM):
 * - a number (250, 421, 451, 550, ...) or `{ code, message?, delayMs? }`: answer RCPT TO with it;
 * - `{ dataCode, message?, delayMs? }`: accept RCPT TO, then answer the message (after DATA) with
 *   it, `delayMs` late (a slow server);
 * - `'hang'`: never answer RCPT TO;
 * - `'stall-data'`: accept, read the whole message, never answer it;
 * - `'drop-data'`: accept, drop the connection after the first chunk of the message;
 * - `'drop-after-data'`: accept, read the whole message, drop the connection without answering.
 * Hostile (a relay that breaks the protocol; the session goes on):
 * - `'garbage'` / `{ raw: line }`: answer RCPT TO (or MAIL FROM) with a line without a code (or
 *   with `line`, e.g. '354 go ahead', a code that makes no sense there); the sink treats the
 *   command as refused;
 * - `'garbage-data'` / `{ dataRaw: line }`: accept, read the whole message, answer it likewise
 *   (the message is not recorded);
 * - `'reset-data'`: accept, reset the TCP connection (RST) after the first chunk of the message.
 */
export type SinkReply =
  | number
  | { code: number; message?: string; delayMs?: number }
  | { dataCode: number; message?: string; delayMs?: number }
  | { raw: string }
  | { dataRaw: string }
  | 'hang'
  | 'stall-data'
  | 'drop-data'
  | 'drop-after-data'
  | 'garbage'
  | 'garbage-data'
  | 'reset-data';

/** What a hostile sink says instead of a reply (`'garbage'`, `'garbage-data'`). */
export const GARBAGE_REPLY = 'Sure thing, whatever you say';

/** Data-phase behaviours: RCPT TO is accepted and the behaviour acts after DATA. */
const DATA_PHASE = new Set<SinkReply>(['stall-data', 'drop-data', 'drop-after-data', 'garbage-data', 'reset-data']);
const isDataPhase = (r: SinkReply): boolean => (typeof r === 'string' ? DATA_PHASE.has(r) : typeof r === 'object' && ('dataCode' in r || 'dataRaw' in r));

/** What the sink does with a new connection: greet, never greet, refuse with a code, or close at once. */
export type SinkConnectReply = 'greet' | 'hang' | 'close' | number;

export interface SinkContext {
  /** How many times this address was seen at RCPT TO (or MAIL FROM), 1 for the first. */
  attempt: number;
  /** 1-based number of the TCP connection the command arrived on. */
  connection: number;
}

export interface SmtpSinkOptions {
  /** Reply per recipient (default 250). */
  script?: (rcpt: string, ctx: SinkContext) => SinkReply;
  /** Reply to MAIL FROM (default 250). Data-phase replies are not meaningful here. */
  mail?: (from: string, ctx: SinkContext) => SinkReply;
  /** Per new connection (1-based index): greet (default), hang, close, or refuse with a code such as 421. */
  connect?: (index: number) => SinkConnectReply;
  /** Answer 421 "too many connections" to connections beyond this many open at once. */
  maxConnections?: number;
  /** smtp-server waits 100 ms before its greeting (early-talker check); false skips it for speed. */
  greetingDelay?: boolean;
  /** Advertise PIPELINING (default true, as real relays do). */
  pipelining?: boolean;
  /** Called for every message answered with 250, as it is recorded (latency measurements). */
  onMessage?: (message: SinkMessage) => void;
}

export interface SinkMessage {
  from: string;
  to: string[];
  /** The message as received, dot-unstuffed, without the terminating `.` line. */
  raw: Buffer;
  connection: number;
  at: number;
}

export interface SmtpSink {
  host: string;
  port: number;
  /** Messages answered with 250, in order. */
  messages: SinkMessage[];
  /** TCP connections accepted so far. */
  readonly connections: number;
  /** TCP connections open now. */
  readonly openConnections: number;
  /** Messages whose DATA arrived in full (answered or not). */
  readonly dataReceived: number;
  /** RCPT TO count per address. */
  rcptAttempts: Map<string, number>;
  waitForMessages(n: number, timeoutMs?: number): Promise<SinkMessage[]>;
  waitForConnections(n: number, timeoutMs?: number): Promise<void>;
  /** Waits until at most `n` connections are open. */
  waitForOpenAtMost(n: number, timeoutMs?: number): Promise<void>;
  /** Messages received for an address. */
  messagesTo(address: string): SinkMessage[];
  /** Stops listening and destroys every open connection (hung ones included). */
  close(): Promise<void>;
}

interface ConnInfo {
  index: number;
  socket: net.Socket;
}

const DEFAULT_TEXT: Record<number, string> = {
  421: '4.3.2 Service not available, closing channel',
  450: '4.2.1 Mailbox busy, try again later',
  451: '4.3.0 Try again later',
  452: '4.3.1 Insufficient system storage',
  550: '5.1.1 Mailbox unavailable',
  552: '5.3.4 Message too big',
  553: '5.1.3 Bad address syntax',
  554: '5.7.1 Rejected',
};

/** An error smtp-server answers with `code`; the text starts with an enhanced status code unless given. */
function smtpError(code: number, message?: string): Error {
  const text = message ?? DEFAULT_TEXT[code] ?? `${Math.floor(code / 100)}.0.0 Test sink says ${code}`;
  const err = new Error(text) as Error & { responseCode: number };
  err.responseCode = code;
  return err;
}

/** smtp-server without its fixed 100 ms early-talker delay before the greeting (also used by the fake internet's providers). */
export class UndelayedSmtpServer extends SMTPServer {
  override connect(socket: net.Socket, socketOptions?: ConstructorParameters<typeof ServerConnection>[2]): void {
    // Mirrors SMTPServer.connect(), replacing connection.init() (which waits 100 ms).
    const connection = new ServerConnection(this, socket, socketOptions);
    this.connections.add(connection);
    connection.on('error', (err: Error) => this._onError(err));
    connection.on('connect', (data: Parameters<SMTPServer['_onClientConnect']>[0]) => this._onClientConnect(data));
    connection._setListeners(() => connection.connectionReady());
  }
}

/** Starts a scripted sink on 127.0.0.1 at a free port; `close()` it when done. */
export async function startSmtpSink(opts: SmtpSinkOptions = {}): Promise<SmtpSink> {
  const script = opts.script ?? (() => 250);
  const mailScript = opts.mail ?? (() => 250);
  const messages: SinkMessage[] = [];
  const rcptAttempts = new Map<string, number>();
  const mailAttempts = new Map<string, number>();
  const sockets = new Map<number, net.Socket>(); // by remote port
  const sessions = new Map<string, ConnInfo>();
  const pendingRcpt = new Map<string, SinkReply[]>(); // session id → data-phase replies
  let connections = 0;
  let dataReceived = 0;

  const connInfo = (session: SMTPServerSession): ConnInfo => {
    let info = sessions.get(session.id);
    if (!info) {
      const socket = sockets.get(session.remotePort);
      info = { index: (socket as net.Socket & { sinkIndex?: number })?.sinkIndex ?? 0, socket: socket! };
      sessions.set(session.id, info);
    }
    return info;
  };

  /** The next reply on this session's connection goes out as `line` (the session carries on as if it had answered). */
  const replaceNextReply = (session: SMTPServerSession, line: string): void => {
    const conn = [...(server.connections as Set<{ id: string; send: (...a: unknown[]) => void; _socket: net.Socket }>)].find((c) => c.id === session.id);
    if (!conn) return;
    const send = conn.send;
    conn.send = () => {
      conn.send = send;
      if (!conn._socket.destroyed) conn._socket.write(`${line}\r\n`);
    };
  };

  const answer = (reply: SinkReply, session: SMTPServerSession, callback: (err?: Error | null) => void, onAccept?: () => void): void => {
    if (reply === 'hang') return;
    if (reply === 'garbage' || (typeof reply === 'object' && 'raw' in reply)) {
      // On the wire the hostile line; for the session a refusal (the client cannot have understood it).
      replaceNextReply(session, reply === 'garbage' ? GARBAGE_REPLY : reply.raw);
      return callback(smtpError(550));
    }
    if (typeof reply === 'number') {
      if (reply >= 200 && reply < 300) {
        onAccept?.();
        return callback();
      }
      return callback(smtpError(reply));
    }
    if (typeof reply === 'object' && 'code' in reply) {
      const respond = (): void => {
        if (reply.code >= 200 && reply.code < 300) {
          onAccept?.();
          return callback();
        }
        callback(smtpError(reply.code, reply.message));
      };
      if (reply.delayMs) setTimeout(respond, reply.delayMs).unref();
      else respond();
      return;
    }
    // Data-phase behaviours accept the recipient now and act after DATA.
    onAccept?.();
    callback();
  };

  const ServerClass = opts.greetingDelay === false ? UndelayedSmtpServer : SMTPServer;
  const server = new ServerClass({
    logger: false,
    disabledCommands: ['STARTTLS', 'AUTH'],
    authOptional: true,
    disableReverseLookup: true,
    hidePIPELINING: opts.pipelining === false,
    closeTimeout: 100,
    onConnect(session, callback) {
      const info = connInfo(session);
      const open = sockets.size;
      if (opts.maxConnections !== undefined && open > opts.maxConnections) {
        return callback(smtpError(421, '4.7.0 Too many connections, try again later'));
      }
      const reply = opts.connect?.(info.index) ?? 'greet';
      if (reply === 'greet') return callback();
      if (reply === 'hang') return;
      if (reply === 'close') {
        info.socket?.destroy();
        return;
      }
      callback(smtpError(reply));
    },
    onMailFrom(address, session, callback) {
      const n = (mailAttempts.get(address.address) ?? 0) + 1;
      mailAttempts.set(address.address, n);
      pendingRcpt.set(session.id, []);
      answer(mailScript(address.address, { attempt: n, connection: connInfo(session).index }), session, callback);
    },
    onRcptTo(address, session, callback) {
      const n = (rcptAttempts.get(address.address) ?? 0) + 1;
      rcptAttempts.set(address.address, n);
      const reply = script(address.address, { attempt: n, connection: connInfo(session).index });
      answer(reply, session, callback, () => pendingRcpt.get(session.id)?.push(reply));
    },
    onData(stream: SMTPServerDataStream, session, callback) {
      const info = connInfo(session);
      const replies = pendingRcpt.get(session.id) ?? [];
      const dataReply = replies.find(isDataPhase);
      const chunks: Buffer[] = [];
      if (dataReply === 'drop-data' || dataReply === 'reset-data') {
        stream.once('data', () => (dataReply === 'reset-data' ? info.socket?.resetAndDestroy() : info.socket?.destroy()));
        stream.on('error', () => {});
        return;
      }
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        dataReceived++;
        if (dataReply === 'stall-data') return;
        if (dataReply === 'drop-after-data') {
          info.socket?.destroy();
          return;
        }
        if (dataReply === 'garbage-data' || (typeof dataReply === 'object' && 'dataRaw' in dataReply)) {
          replaceNextReply(session, dataReply === 'garbage-data' ? GARBAGE_REPLY : dataReply.dataRaw);
          return callback(null, 'OK: not recorded (hostile reply)');
        }
        const finish = (): void => {
          if (typeof dataReply === 'object' && 'dataCode' in dataReply && dataReply.dataCode >= 300) {
            return callback(smtpError(dataReply.dataCode, dataReply.message));
          }
          const env = session.envelope;
          const received: SinkMessage = {
            from: env.mailFrom ? env.mailFrom.address : '',
            to: env.rcptTo.map((r) => r.address),
            raw: Buffer.concat(chunks),
            connection: info.index,
            at: Date.now(),
          };
          messages.push(received);
          opts.onMessage?.(received);
          callback(null, 'OK: queued as test-sink');
        };
        const delay = typeof dataReply === 'object' && 'dataCode' in dataReply ? dataReply.delayMs : undefined;
        if (delay) setTimeout(finish, delay).unref();
        else finish();
      });
    },
    onClose(session) {
      sessions.delete(session.id);
      pendingRcpt.delete(session.id);
    },
  });
  server.on('error', () => {});
  server.server.on('connection', (socket: net.Socket & { sinkIndex?: number }) => {
    connections++;
    socket.sinkIndex = connections;
    const port = socket.remotePort ?? -connections;
    sockets.set(port, socket);
    socket.once('close', () => sockets.delete(port));
  });

  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.server.address() as net.AddressInfo;

  const sink: SmtpSink = {
    host: '127.0.0.1',
    port: address.port,
    messages,
    rcptAttempts,
    get connections() {
      return connections;
    },
    get openConnections() {
      return sockets.size;
    },
    get dataReceived() {
      return dataReceived;
    },
    async waitForMessages(n, timeoutMs = 10_000) {
      await waitFor(() => messages.length >= n, timeoutMs, `${n} messages at the sink (have ${messages.length})`);
      return messages;
    },
    async waitForConnections(n, timeoutMs = 10_000) {
      await waitFor(() => connections >= n, timeoutMs, `${n} connections at the sink (have ${connections})`);
    },
    async waitForOpenAtMost(n, timeoutMs = 10_000) {
      await waitFor(() => sockets.size <= n, timeoutMs, `at most ${n} open connections (have ${sockets.size})`);
    },
    messagesTo(addr) {
      return messages.filter((m) => m.to.includes(addr));
    },
    async close() {
      for (const s of sockets.values()) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return sink;
}
