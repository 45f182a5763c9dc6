/**
 * A scripted mailbox provider's MX host: a real `smtp-server` on its own 127.0.0.x address that
 * answers like a provider ({@link ProviderScript}: throttling, greylisting, unknown users,
 * blocklisted sources, TLS required, slow replies), offers STARTTLS with a certificate for its
 * host name signed by the fake internet's CA (or a self-signed one), and records every accepted
 * message with the peer address, EHLO name, TLS protocol and the DKIM verdict of an independent
 * verifier (mailauth's `dkimVerify`, resolving keys in the fake DNS).
 */
import type net from 'node:net';
import type { TLSSocket } from 'node:tls';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import { SMTPConnection as ServerConnection } from 'smtp-server/lib/smtp-connection.js';
import { waitFor } from '../broker.js';
import type { CertificateAuthority } from './certificates.js';
import type { ResolveFunction } from './dns-server.js';
import { ProviderPolicy, type ProviderScript, type ScriptedReply } from './provider-script.js';

export interface FakeSmtpOptions {
  /** The address to listen on (its own per server, e.g. 127.0.0.20). Default: the next free one from 127.0.0.20. */
  host?: string;
  /** Default: the fake internet's shared `smtpPort`; 0 for a random one. */
  port?: number;
  /** The server's host name: banner, and the certificate's name unless `certFor` says otherwise. Default `host`. */
  name?: string;
  /** `starttls` (default): offered, optional; `required`: MAIL FROM before STARTTLS gets 530; `none`: not offered. */
  tls?: 'none' | 'starttls' | 'required';
  /** Host name(s) the certificate is for. Default `name`. */
  certFor?: string | string[];
  /** A self-signed certificate instead of one signed by the harness CA (opportunistic TLS must still accept it). */
  selfSigned?: boolean;
  script?: ProviderScript;
  /** Verify each accepted message's DKIM signatures against the fake DNS (default true). */
  verifyDkim?: boolean;
}

/** One DKIM signature's verdict, from mailauth's verifier. */
export interface DkimVerdict {
  result: string;
  domain: string;
  selector: string | undefined;
  algorithm: string | undefined;
  /** Header fields the signature covers (its `h=` tag), lower-case. */
  signedHeaders: string[];
  comment: string | undefined;
}

export interface ReceivedMessage {
  from: string;
  to: string[];
  /** The message as received (dot-unstuffed). */
  raw: Buffer;
  /** The client's source address (the pool address it bound). */
  peer: string;
  /** The EHLO/HELO name the client gave (after STARTTLS, the one it gave again). */
  ehlo: string;
  /** Negotiated TLS protocol (`TLSv1.3`, …) or null for a plaintext session. */
  tls: string | null;
  /** One verdict per DKIM-Signature header; empty for an unsigned message. */
  dkim: DkimVerdict[];
  /** 1-based number of the TCP connection it came on. */
  connection: number;
  at: number;
}

/** A command the server refused. */
export interface Refusal {
  stage: 'connect' | 'mail' | 'rcpt';
  code: number;
  message: string;
  peer: string;
  from?: string;
  rcpt?: string;
  at: number;
}

interface ConnectionStats {
  open: number;
  max: number;
  total: number;
}

/** smtp-server without its fixed 100 ms early-talker delay before the greeting (as in smtp-sink.ts). */
class UndelayedSmtpServer extends SMTPServer {
  override connect(socket: net.Socket, socketOptions?: ConstructorParameters<typeof ServerConnection>[2]): void {
    const connection = new ServerConnection(this, socket, socketOptions);
    this.connections.add(connection);
    connection.on('error', (err: Error) => this._onError(err));
    connection.on('connect', (data: Parameters<SMTPServer['_onClientConnect']>[0]) => this._onClientConnect(data));
    connection._setListeners(() => connection.connectionReady());
  }
}

function smtpError(reply: ScriptedReply): Error {
  return Object.assign(new Error(reply.message), { responseCode: reply.code });
}

export class FakeSmtpServer {
  /** Accepted messages, in order. */
  readonly messages: ReceivedMessage[] = [];
  /** Refused commands, in order. */
  readonly refusals: Refusal[] = [];
  private readonly stats = new Map<string, ConnectionStats>();
  private readonly sockets = new Set<net.Socket>();
  private readonly releases = new Map<string, () => void>(); // peer:port → end of connection
  private readonly tlsProtocols = new Map<string, string>();
  private readonly connectionIndex = new Map<string, number>(); // peer:port → index
  private connectionCount = 0;
  private closed = false;

  /** @internal use FakeInternet.smtp() */
  constructor(
    readonly host: string,
    readonly port: number,
    readonly name: string,
    private readonly server: SMTPServer,
  ) {}

  /** TCP connections accepted so far (from `source` only, if given). */
  connections(source?: string): number {
    return this.stat(source, 'total');
  }

  /** Connections open now (from `source` only, if given). */
  openConnections(source?: string): number {
    return this.stat(source, 'open');
  }

  /** The most connections that were open at once (from `source` only, if given). */
  maxConcurrentConnections(source?: string): number {
    return this.stat(source, 'max');
  }

  /** Accepted messages from one source address. */
  messagesFrom(source: string): ReceivedMessage[] {
    return this.messages.filter((m) => m.peer === source);
  }

  /** Waits until at least `n` messages were accepted; returns them all. */
  async waitForMessages(n: number, timeoutMs = 10_000): Promise<ReceivedMessage[]> {
    await waitFor(() => this.messages.length >= n, timeoutMs, `${n} messages at ${this.name}`);
    return this.messages;
  }

  /** Stops listening and destroys every open connection. Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** @internal counts a new TCP connection until its socket (or the TLS socket that took it over) closes */
  track(socket: net.Socket): void {
    const peer = socket.remoteAddress ?? '';
    const key = `${peer}:${socket.remotePort}`;
    this.connectionIndex.set(key, ++this.connectionCount);
    const bump = (s: ConnectionStats): void => {
      s.open++;
      s.total++;
      s.max = Math.max(s.max, s.open);
    };
    bump(this.statsFor(''));
    bump(this.statsFor(peer));
    let open = true;
    const release = (): void => {
      if (!open) return;
      open = false;
      this.sockets.delete(socket);
      this.releases.delete(key);
      this.statsFor('').open--;
      this.statsFor(peer).open--;
    };
    this.sockets.add(socket);
    this.releases.set(key, release);
    socket.once('close', release);
  }

  /**
   * @internal After STARTTLS the TLS socket owns the connection's handle and the plain socket
   * never emits 'close' again: the connection ends when the TLS socket closes.
   */
  secured(socket: TLSSocket, session: SMTPServerSession): void {
    const protocol = socket.getProtocol?.();
    if (protocol) this.tlsProtocols.set(session.id, protocol);
    this.sockets.add(socket);
    const release = this.releases.get(`${session.remoteAddress}:${session.remotePort}`);
    socket.once('close', () => {
      this.sockets.delete(socket);
      release?.();
    });
  }

  /** @internal */
  refused(refusal: Omit<Refusal, 'at'>): void {
    this.refusals.push({ ...refusal, at: Date.now() });
  }

  /** @internal */
  accept(session: SMTPServerSession, raw: Buffer, dkim: DkimVerdict[]): void {
    this.messages.push({
      from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
      to: session.envelope.rcptTo.map((r) => r.address),
      raw,
      peer: session.remoteAddress,
      ehlo: session.hostNameAppearsAs,
      tls: this.tlsProtocols.get(session.id) ?? null,
      dkim,
      connection: this.connectionIndex.get(`${session.remoteAddress}:${session.remotePort}`) ?? 0,
      at: Date.now(),
    });
  }

  private statsFor(source: string): ConnectionStats {
    let s = this.stats.get(source);
    if (!s) this.stats.set(source, (s = { open: 0, max: 0, total: 0 }));
    return s;
  }

  private stat(source: string | undefined, key: keyof ConnectionStats): number {
    return this.stats.get(source ?? '')?.[key] ?? 0;
  }
}

async function verifyDkim(raw: Buffer, from: string, resolver: ResolveFunction): Promise<DkimVerdict[]> {
  const { results } = await dkimVerify(raw, { resolver: resolver as never, sender: from || undefined });
  // at run time mailauth 4.13 names the algorithm `algo` (its types say `algorithm`)
  type RawResult = (typeof results)[number] & { algo?: string; signingHeaders?: { keys?: string } };
  return (results as RawResult[])
    .filter((r) => r.signingDomain)
    .map((r) => ({
      result: r.status.result,
      domain: r.signingDomain,
      selector: r.selector,
      algorithm: r.algo ?? r.algorithm,
      signedHeaders: (r.signingHeaders?.keys ?? '').split(':').map((h) => h.trim().toLowerCase()).filter(Boolean),
      comment: r.status.comment,
    }));
}

const readAll = async (stream: SMTPServerDataStream): Promise<Buffer> => {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
};

/** @internal Starts a provider server; FakeInternet.smtp() supplies the CA and resolver. */
export async function startFakeSmtp(opts: FakeSmtpOptions & { host: string }, deps: { ca: CertificateAuthority; resolver: ResolveFunction }): Promise<FakeSmtpServer> {
  const tlsMode = opts.tls ?? 'starttls';
  const name = opts.name ?? opts.host;
  const script = opts.script ?? {};
  const policy = new ProviderPolicy(script, tlsMode === 'required');
  const certNames = [opts.certFor ?? name].flat();
  const cert = tlsMode === 'none' ? undefined : await (opts.selfSigned ? deps.ca.selfSigned(certNames) : deps.ca.issue(certNames));
  const delay = (fn: () => void): void => {
    if (script.replyDelayMs) setTimeout(fn, script.replyDelayMs);
    else fn();
  };
  // eslint-disable-next-line prefer-const -- the handlers below close over it before it is set
  let fake: FakeSmtpServer;
  const answer = (reply: ScriptedReply | undefined, callback: (err?: Error | null) => void, refusal: Omit<Refusal, 'at' | 'code' | 'message'>): void => {
    if (reply) fake.refused({ ...refusal, code: reply.code, message: reply.message });
    delay(() => callback(reply ? smtpError(reply) : null));
  };
  const server = new UndelayedSmtpServer({
    name,
    banner: `${name} fake provider ESMTP`,
    secure: false,
    key: cert?.key,
    cert: cert?.cert,
    disabledCommands: tlsMode === 'none' ? ['STARTTLS', 'AUTH'] : ['AUTH'],
    logger: false,
    closeTimeout: 100,
    disableReverseLookup: true, // the client's name is not looked up in the system DNS (loopback only)
    onConnect(session, callback) {
      const reply = policy.connect(session.remoteAddress, fake.openConnections(session.remoteAddress));
      if (reply) fake.refused({ stage: 'connect', code: reply.code, message: reply.message, peer: session.remoteAddress });
      callback(reply ? smtpError(reply) : null);
    },
    onSecure(socket, session, callback) {
      fake.secured(socket as TLSSocket, session);
      callback();
    },
    onMailFrom(address, session, callback) {
      answer(policy.mail(session.remoteAddress, session.secure), callback, { stage: 'mail', peer: session.remoteAddress, from: address.address });
    },
    onRcptTo(address, session, callback) {
      const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
      answer(policy.rcpt(session.remoteAddress, from, address.address), callback, { stage: 'rcpt', peer: session.remoteAddress, from, rcpt: address.address });
    },
    onData(stream, session, callback) {
      readAll(stream)
        .then(async (raw) => {
          const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
          const dkim = opts.verifyDkim === false ? [] : await verifyDkim(raw, from, deps.resolver);
          fake.accept(session, raw, dkim);
          delay(() => callback(null));
        })
        .catch((err: Error) => callback(Object.assign(err, { responseCode: 451 })));
    },
  });
  server.on('error', () => undefined); // client resets and failed handshakes are part of the tests
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new Error(`fake internet: SMTP server cannot listen on ${opts.host}:${opts.port ?? 0} (${err.code})`, { cause: err })),
    );
    server.listen(opts.port ?? 0, opts.host, () => resolve());
  });
  const address = server.server.address() as net.AddressInfo;
  fake = new FakeSmtpServer(opts.host, address.port, name, server);
  // ahead of smtp-server's own listener: a connection is counted before the server handles it
  server.server.prependListener('connection', (socket: net.Socket) => fake.track(socket));
  return fake;
}
