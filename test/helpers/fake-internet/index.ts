/**
 * A fake internet on loopback for delivery, bounce and webhook tests: a DNS server, a throwaway
 * certificate authority, scripted mailbox-provider SMTP servers on their own 127.0.0.x
 * addresses, MTA-STS policies over HTTPS and HTTP receivers. See README.md next to this file.
 *
 *   const net = await startFakeInternet();
 *   after(() => net.close());
 *   const mx = await net.smtp({ host: '127.0.0.20', name: 'mx1.example.test', mxFor: 'example.test' });
 *   // ... deliver to someone@example.test with DNS servers net.dns.servers ...
 *   await mx.waitForMessages(1);
 */
import { freePort } from '../free-port.js';
import { createCertificateAuthority, type CertificateAuthority } from './certificates.js';
import { startFakeDns, type FakeDns } from './dns-server.js';
import { startHttpReceiver, type FakeHttpReceiver, type HttpReceiverOptions } from './http-receiver.js';
import { startFakeMtaSts, type FakeMtaSts, type MtaStsPolicy, type MtaStsPublishOptions, type PublishedMtaSts } from './mta-sts-server.js';
import { startFakeSmtp, type FakeSmtpOptions, type FakeSmtpServer } from './smtp-provider.js';

export type { CertificateAuthority, IssuedCertificate } from './certificates.js';
export type { DnsBehaviour, DnsQuery, FakeDns, RecordOptions, ResolveFunction, CallbackResolveFunction, ResolverOptions } from './dns-server.js';
export type { RecordType } from './dns-zone.js';
export type { FakeHttpReceiver, HttpReceiverOptions, HttpReply, ReceivedRequest, Responder } from './http-receiver.js';
export type { FakeMtaSts, MtaStsPolicy, MtaStsPublishOptions, MtaStsRequest, PublishedMtaSts } from './mta-sts-server.js';
export { policyText } from './mta-sts-server.js';
export type { DkimVerdict } from './dkim-verdicts.js';
export type { FakeSmtpOptions, FakeSmtpServer, ReceivedMessage, Refusal } from './smtp-provider.js';
export { BLOCKED, GREYLISTED, THROTTLED, TLS_REQUIRED, TOO_MANY_CONNECTIONS, UNKNOWN_USER, type ProviderScript, type ScriptedReply } from './provider-script.js';

export interface FakeSmtpStartOptions extends FakeSmtpOptions {
  /**
   * Domains this server is the MX for: publishes `MX 10 <name>` for each and `A <name> → host`
   * (`name` defaults to `mx.<first domain>` then).
   */
  mxFor?: string | string[];
}

export interface FakeInternet {
  /** The DNS server on 127.0.0.1 (`dns.servers` for resolver config). */
  dns: FakeDns;
  /** The per-run certificate authority. */
  ca: CertificateAuthority;
  /** The CA certificate (PEM): pass as `ca` to TLS clients that must verify fake hosts. */
  caPem: string;
  /** Its file, for `NODE_EXTRA_CA_CERTS`. */
  caFile: string;
  /** Trusts the CA for in-process `https` (global agent; mailauth's MTA-STS fetch); returns the undo. */
  trustInProcess(): () => void;
  /** Environment for child processes that must trust the CA (`NODE_EXTRA_CA_CERTS`). */
  childEnv(): Record<string, string>;
  /**
   * The port every `smtp()` server listens on unless told otherwise (each on its own address):
   * a sender uses one SMTP port for every MX host, as port 25 is on the real internet.
   */
  smtpPort: number;
  /** Starts a scripted provider SMTP server (default address: the next unused one from 127.0.0.20; port {@link smtpPort}). */
  smtp(opts?: FakeSmtpStartOptions): Promise<FakeSmtpServer>;
  /** Publishes an MTA-STS policy for `domain` (starts the HTTPS server on 127.0.0.x:443 on first use). */
  mtaSts(domain: string, policy: MtaStsPolicy, opts?: MtaStsPublishOptions): Promise<PublishedMtaSts>;
  /** The MTA-STS server once started (its `requests` log counts policy fetches). */
  readonly mtaStsServer: FakeMtaSts | undefined;
  /** Starts an HTTP receiver (webhook endpoint). */
  http(opts?: HttpReceiverOptions): Promise<FakeHttpReceiver>;
  /** Closes everything started, undoes in-process trust, deletes the certificates. Safe to call twice. */
  close(): Promise<void>;
}

/** First address handed to `smtp()` without a `host`; pool source addresses use 127.0.0.2–9. */
const FIRST_SMTP_HOST = 20;

/** Starts the DNS server and the CA; everything else starts on demand. */
export async function startFakeInternet(): Promise<FakeInternet> {
  const [dns, ca, smtpPort] = await Promise.all([startFakeDns(), createCertificateAuthority(), freePort()]);
  const closers: (() => Promise<void>)[] = [];
  const usedHosts = new Set<string>();
  let mtaSts: Promise<FakeMtaSts> | undefined;
  let mtaStsServer: FakeMtaSts | undefined;
  let closing: Promise<void> | undefined;
  const dkimResolver = dns.resolver({ timeoutMs: 2000, tries: 1 });

  const nextHost = (): string => {
    for (let i = FIRST_SMTP_HOST; i < 255; i++) if (!usedHosts.has(`127.0.0.${i}`)) return `127.0.0.${i}`;
    throw new Error('fake internet: no free 127.0.0.x address left for another SMTP server');
  };

  return {
    dns,
    ca,
    caPem: ca.caPem,
    caFile: ca.caFile,
    smtpPort,
    trustInProcess: () => ca.trustInProcess(),
    childEnv: () => ca.childEnv(),
    get mtaStsServer() {
      return mtaStsServer;
    },

    async smtp(opts = {}) {
      const domains = [opts.mxFor ?? []].flat();
      const host = opts.host ?? nextHost();
      const name = opts.name ?? (domains.length ? `mx.${domains[0]}` : host);
      usedHosts.add(host);
      const server = await startFakeSmtp({ ...opts, host, name, port: opts.port ?? smtpPort }, { ca, resolver: dkimResolver });
      closers.push(() => server.close());
      if (domains.length) {
        dns.a(name, host);
        for (const domain of domains) dns.mx(domain, [{ exchange: name, priority: 10 }]);
      }
      return server;
    },

    async mtaSts(domain, policy, opts) {
      if (!mtaSts) {
        mtaSts = startFakeMtaSts({ dns, ca });
        mtaSts.then(
          (server) => {
            mtaStsServer = server;
            closers.push(() => server.close());
          },
          () => undefined,
        );
      }
      return (await mtaSts).publish(domain, policy, opts);
    },

    async http(opts) {
      const receiver = await startHttpReceiver(opts);
      closers.push(() => receiver.close());
      return receiver;
    },

    close() {
      closing ??= (async () => {
        await mtaSts?.catch(() => undefined); // a policy server still starting is closed too
        // every step runs even when an earlier one failed
        const results = await Promise.allSettled([...closers.map((c) => c()), dns.close()]);
        await ca.close();
        const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failed) throw failed.reason;
      })();
      return closing;
    },
  };
}
