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
import { SMTPServer, type SMTPServerDataStream, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import { waitFor } from '../broker.js';
import { UndelayedSmtpServer } from '../smtp-sink.js';
import type { CertificateAuthority } from './certificates.js';
import { verifyDkim, type DkimVerdict } from './dkim-verdicts.js';
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

  /**
   * @internal counts a new TCP connection until the client has closed its side (FIN: it can send
   * nothing more) or the socket (or the TLS socket that took it over) closes, whichever is first —
   * the server's own close of a TLS socket can trail the client's by a few milliseconds, which
   * would count a connection the client has already given up as still open.
   */
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
    socket.once('end', release);
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
    socket.once('end', () => release?.());
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

/** What the provider does at each command, given its policy and where to record. */
interface HandlerContext {
  policy: ProviderPolicy;
  /** The server object (set once listening; no connection arrives before). */
  fake: () => FakeSmtpServer;
  /** Runs a reply after the script's delay. */
  delay: (fn: () => void) => void;
  verify: ((raw: Buffer, from: string) => Promise<DkimVerdict[]>) | undefined;
}

type Handlers = Pick<SMTPServerOptions, 'onConnect' | 'onSecure' | 'onMailFrom' | 'onRcptTo' | 'onData'>;

const envelopeFrom = (session: SMTPServerSession): string => (session.envelope.mailFrom ? session.envelope.mailFrom.address : '');

function providerHandlers({ policy, fake, delay, verify }: HandlerContext): Handlers {
  const answer = (reply: ScriptedReply | undefined, callback: (err?: Error | null) => void, refusal: Omit<Refusal, 'at' | 'code' | 'message'>): void => {
    if (reply) fake().refused({ ...refusal, code: reply.code, message: reply.message });
    delay(() => callback(reply ? smtpError(reply) : null));
  };
  return {
    onConnect(session, callback) {
      const peer = session.remoteAddress;
      const reply = policy.connect(peer, fake().openConnections(peer));
      if (reply) fake().refused({ stage: 'connect', code: reply.code, message: reply.message, peer });
      callback(reply ? smtpError(reply) : null);
    },
    onSecure(socket, session, callback) {
      fake().secured(socket as TLSSocket, session);
      callback();
    },
    onMailFrom(address, session, callback) {
      answer(policy.mail(session.remoteAddress, session.secure), callback, { stage: 'mail', peer: session.remoteAddress, from: address.address });
    },
    onRcptTo(address, session, callback) {
      const from = envelopeFrom(session);
      answer(policy.rcpt(session.remoteAddress, from, address.address), callback, { stage: 'rcpt', peer: session.remoteAddress, from, rcpt: address.address });
    },
    onData(stream, session, callback) {
      readAll(stream)
        .then(async (raw) => {
          const dkim = verify ? await verify(raw, envelopeFrom(session)) : [];
          fake().accept(session, raw, dkim);
          delay(() => callback(null));
        })
        .catch((err: Error) => callback(Object.assign(err, { responseCode: 451 })));
    },
  };
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
  const certNames = [opts.certFor ?? name].flat();
  const cert = tlsMode === 'none' ? undefined : await (opts.selfSigned ? deps.ca.selfSigned(certNames) : deps.ca.issue(certNames));
  let fake: FakeSmtpServer | undefined;
  const handlers = providerHandlers({
    policy: new ProviderPolicy(script, tlsMode === 'required'),
    fake: () => fake!,
    delay: (fn) => (script.replyDelayMs ? void setTimeout(fn, script.replyDelayMs) : fn()),
    verify: opts.verifyDkim === false ? undefined : (raw, from) => verifyDkim(raw, from, deps.resolver),
  });
  const server = new UndelayedSmtpServer({
    ...handlers,
    name,
    banner: `${name} fake provider ESMTP`,
    secure: false,
    key: cert?.key,
    cert: cert?.cert,
    disabledCommands: tlsMode === 'none' ? ['STARTTLS', 'AUTH'] : ['AUTH'],
    logger: false,
    closeTimeout: 100,
    disableReverseLookup: true, // the client's name is not looked up in the system DNS (loopback only)
  });
  server.on('error', () => undefined); // client resets and failed handshakes are part of the tests
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new Error(`fake internet: SMTP server cannot listen on ${opts.host}:${opts.port ?? 0} (${err.code})`, { cause: err })),
    );
    server.listen(opts.port ?? 0, opts.host, () => resolve());
  });
  const created = new FakeSmtpServer(opts.host, (server.server.address() as net.AddressInfo).port, name, server);
  fake = created;
  // ahead of smtp-server's own listener: a connection is counted before the server handles it
  server.server.prependListener('connection', (socket: net.Socket) => created.track(socket));
  return created;
}
