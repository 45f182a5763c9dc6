/**
 * One persistent SMTP connection of a fleet: nodemailer's SMTPConnection (which speaks SMTP,
 * STARTTLS, AUTH and PIPELINING) behind a promise API, with the bookkeeping a fleet needs —
 * how many messages it carried, and why it closed. Every operation settles exactly once, also
 * when the connection dies under it.
 */
import { EventEmitter } from 'node:events';
import type net from 'node:net';
import SMTPConnection, { type SMTPConnectionSendInfo } from 'nodemailer/lib/smtp-connection';
import type { NodemailerError } from 'nodemailer/lib/errors';
import type { SmtpTarget } from './route.js';

export interface ConnectionTimeouts {
  connectionTimeoutMs: number;
  greetingTimeoutMs: number;
  /** Silence allowed while a reply is due. Idle connections have no socket timeout. */
  socketTimeoutMs: number;
}

/** Why a connection closed (a bounded label for metrics). */
export type CloseReason = 'idle' | 'shutdown' | 'broken' | 'protocol-error' | 'reset-failed' | 'server-closed' | 'timeout' | 'error' | 'connect-failed';

const QUIT_WAIT_MS = 1000;

function closedError(message: string): NodemailerError {
  return Object.assign(new Error(message), { code: 'ECONNECTION' }) as NodemailerError;
}

/**
 * Emits 'closed' (reason: CloseReason, err?: Error) once, whatever ended it.
 */
export class FleetConnection extends EventEmitter {
  /** Messages accepted or refused over this connection (a later one is "reused"). */
  messages = 0;
  closed = false;
  /** The last transaction was refused; RSET before the next one. */
  needsReset = false;
  private readonly conn: SMTPConnection;
  private lastError?: NodemailerError;
  private closeReason?: CloseReason;
  private pending?: (err: NodemailerError) => void;
  /** QUIT was sent: the server closes its side, and the socket is left to close cleanly. */
  private quitting = false;

  constructor(
    readonly id: number,
    readonly target: SmtpTarget,
    private readonly timeouts: ConnectionTimeouts,
  ) {
    super();
    this.conn = new SMTPConnection({
      host: target.host,
      port: target.port,
      secure: target.secure,
      requireTLS: target.requireTLS,
      ignoreTLS: target.ignoreTLS,
      tls: { rejectUnauthorized: target.tlsRejectUnauthorized, ...(target.ca ? { ca: target.ca } : {}) },
      ...(target.clientName ? { name: target.clientName } : {}),
      ...(target.localAddress ? { localAddress: target.localAddress } : {}),
      ...(target.servername ? { servername: target.servername } : {}),
      connectionTimeout: timeouts.connectionTimeoutMs,
      greetingTimeout: timeouts.greetingTimeoutMs,
      socketTimeout: timeouts.socketTimeoutMs,
      logger: false,
    });
    // nodemailer reports failures of the session as 'error' and then closes; the operation in
    // flight (if any) also gets the error through its callback.
    this.conn.on('error', (err: NodemailerError) => {
      this.lastError = err;
    });
    this.conn.once('end', () => this.onEnd());
  }

  private onEnd(): void {
    this.closed = true;
    const err = this.lastError;
    const reason: CloseReason =
      this.closeReason ?? (err ? (err.code === 'ETIMEDOUT' ? 'timeout' : err.code === 'ECONNECTION' && !err.responseCode ? 'server-closed' : 'error') : 'server-closed');
    // The operation's own callback runs right after 'end' when nodemailer failed it; give it
    // the chance to report the precise error before the generic one.
    setImmediate(() => {
      this.pending?.(err ?? closedError('Connection closed'));
      this.pending = undefined;
    });
    // nodemailer ends the session as soon as it has the server's 221 (or gives up on it), with
    // its socket only half closed: the host still counts the connection. 'closed' (which lets a
    // fleet open a replacement) waits until the socket is closed for good, so a connection
    // retiring at its quota and its replacement are never both open at the host. A session that
    // did not end with QUIT has nothing left to wait for: its socket is destroyed now.
    const socket = this.conn._socket;
    // After STARTTLS the TCP connection is the TLS socket's parent: wait for that one to close.
    const tcp = (socket as (net.Socket & { _parent?: net.Socket }) | undefined)?._parent ?? socket;
    const open = [socket, tcp].filter((x, i, all): x is net.Socket => !!x && !x.closed && all.indexOf(x) === i);
    if (open.length === 0) return void this.emit('closed', reason, err);
    let left = open.length;
    for (const x of open) x.once('close', () => --left === 0 && this.emit('closed', reason, err));
    if (!this.quitting) for (const x of open) x.destroy();
  }

  /** The TLS protocol of the session (`TLSv1.3`), or `none` for plain text. */
  get tlsProtocol(): string {
    const socket = this.conn._socket as (typeof this.conn._socket & { getProtocol?: () => string | null }) | undefined;
    return (this.conn.secure && socket?.getProtocol?.()) || 'none';
  }

  /**
   * Opens the session: TCP (TLS), greeting, EHLO, STARTTLS, and AUTH when configured. A target
   * that requires TLS fails with TLS_REQUIRED when the server did not offer STARTTLS.
   */
  open(): Promise<void> {
    return this.run<void>((done) => {
      this.conn.connect((err) => {
        if (err) return done(err);
        if (this.target.tlsRequired && !this.conn.secure) {
          const tlsErr = Object.assign(new Error(`${this.target.servername ?? this.target.host} offers no STARTTLS and TLS is required`), { code: 'TLS_REQUIRED' }) as NodemailerError;
          this.destroy('error');
          return done(tlsErr);
        }
        const auth = this.target.auth;
        if (!auth || !this.conn.allowsAuth) return done(null);
        this.conn.login({ user: auth.user, pass: auth.pass }, (loginErr) => done(loginErr));
      });
    });
  }

  /**
   * Sends one message: envelope from the record, the raw MIME as it is (nodemailer only
   * dot-stuffs and terminates it). Sends RSET first when the previous transaction was refused;
   * a connection that cannot reset is closed and the send fails as a broken connection.
   */
  async send(envelope: { from: string; to: string[] }, raw: string): Promise<SMTPConnectionSendInfo> {
    this.setSocketTimeout(this.timeouts.socketTimeoutMs);
    if (this.needsReset) {
      try {
        await this.run<void>((done) => this.conn.reset((err) => done(err)));
        this.needsReset = false;
      } catch (err) {
        this.destroy('reset-failed');
        throw Object.assign(new Error(`RSET failed: ${(err as Error).message}`, { cause: err }), { code: 'ECONNECTION' });
      }
    }
    return this.run<SMTPConnectionSendInfo>((done) => {
      this.conn.send({ from: envelope.from, to: envelope.to, size: Buffer.byteLength(raw), use8BitMime: /[^\x00-\x7f]/.test(raw) }, raw, (err, info) => {
        this.messages++;
        done(err, info);
      });
    });
  }

  /** Marks the connection idle: no socket timeout while nothing is due (the fleet's idle timer decides). */
  idle(): void {
    this.setSocketTimeout(0);
  }

  /** Says QUIT and waits briefly for the server to close; then the socket is closed anyway. */
  async quit(reason: CloseReason): Promise<void> {
    if (this.closed) return;
    this.closeReason ??= reason;
    const ended = new Promise<void>((resolve) => this.once('closed', () => resolve()));
    this.setSocketTimeout(QUIT_WAIT_MS);
    this.quitting = true;
    this.conn.quit();
    const timer = setTimeout(() => this.destroy(reason), QUIT_WAIT_MS);
    await ended;
    clearTimeout(timer);
  }

  /** Closes the socket now; an operation in flight fails with a connection error. */
  destroy(reason: CloseReason): void {
    if (this.closed) {
      // The session ended but the server has not closed its side (after QUIT): stop waiting.
      const socket = this.conn._socket;
      if (socket && !socket.destroyed) socket.destroy();
      return;
    }
    this.closeReason ??= reason;
    this.conn.close();
  }

  private setSocketTimeout(ms: number): void {
    const socket = this.conn._socket;
    if (socket && !socket.destroyed) socket.setTimeout(ms);
  }

  private run<T>(start: (done: (err: NodemailerError | null | undefined, value?: T) => void) => void): Promise<T> {
    if (this.closed) return Promise.reject(closedError('Connection already closed'));
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const done = (err: NodemailerError | null | undefined, value?: T): void => {
        if (settled) return;
        settled = true;
        this.pending = undefined;
        if (err) reject(err);
        else resolve(value as T);
      };
      this.pending = (err) => done(err);
      start(done);
    });
  }
}
