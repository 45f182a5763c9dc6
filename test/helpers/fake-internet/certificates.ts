/**
 * A throwaway certificate authority per test run, made with the `openssl` CLI in a temp
 * directory (Node's crypto makes keys but cannot sign X.509): leaf certificates for host names,
 * signed by the CA, and self-signed ones that no client can verify. EC P-256 keys, valid a week.
 *
 *   const ca = await createCertificateAuthority();
 *   const { key, cert } = await ca.issue(['mx1.example.test']);
 *   tls.connect({ ca: ca.caPem, servername: 'mx1.example.test', ... });
 *   await ca.close();
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface IssuedCertificate {
  /** PEM private key. */
  key: string;
  /** PEM certificate (leaf only; the CA is {@link CertificateAuthority.caPem}). */
  cert: string;
  keyFile: string;
  certFile: string;
}

/** subjectAltName entries: DNS names, and IP addresses as IP entries. */
function subjectAltName(names: string[]): string {
  return names.map((n) => (net.isIP(n) ? `IP:${n}` : `DNS:${n}`)).join(', ');
}

function leafConfig(names: string[]): string {
  return [
    '[req]',
    'distinguished_name = dn',
    'prompt = no',
    '[dn]',
    `CN = ${names[0]}`,
    '[leaf]',
    'basicConstraints = critical, CA:FALSE',
    'keyUsage = critical, digitalSignature, keyEncipherment',
    'extendedKeyUsage = serverAuth',
    `subjectAltName = ${subjectAltName(names)}`,
    '',
  ].join('\n');
}

const CA_CONFIG = [
  '[req]',
  'distinguished_name = dn',
  'prompt = no',
  '[dn]',
  'CN = Postline fake internet test CA',
  '[ca]',
  'basicConstraints = critical, CA:TRUE',
  'keyUsage = critical, keyCertSign, cRLSign',
  'subjectKeyIdentifier = hash',
  '',
].join('\n');

const NEW_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
const DAYS = ['-days', '7'];

export class CertificateAuthority {
  private readonly issued = new Map<string, Promise<IssuedCertificate>>();
  private counter = 0;
  private restoreTrust: (() => void) | undefined;

  /** @internal use {@link createCertificateAuthority} */
  constructor(
    /** The temp directory holding every key and certificate. */
    readonly dir: string,
    /** The CA certificate (PEM): give it to clients as `ca`. */
    readonly caPem: string,
    /** Path of the CA certificate, e.g. for `NODE_EXTRA_CA_CERTS`. */
    readonly caFile: string,
    private readonly caKeyFile: string,
  ) {}

  /** A certificate for `names` (the first is the CN; all are SANs) signed by this CA; cached per name list. */
  issue(names: string[]): Promise<IssuedCertificate> {
    return this.once(`ca:${names.join(',')}`, (base) => this.sign(names, base));
  }

  /** A self-signed certificate for `names`, which no client trusting only this CA (or the public roots) verifies. */
  selfSigned(names: string[]): Promise<IssuedCertificate> {
    return this.once(`self:${names.join(',')}`, async (base) => {
      const config = `${base}.cnf`;
      await writeFile(config, leafConfig(names));
      await run('openssl', ['req', '-x509', '-config', config, '-extensions', 'leaf', ...NEW_KEY, '-keyout', `${base}.key`, '-out', `${base}.pem`, ...DAYS]);
      return this.read(base);
    });
  }

  /**
   * Trusts the CA in this process for `https` requests through the global agent (mailauth's
   * MTA-STS fetch uses it with `rejectUnauthorized: true`): the agent's `ca` becomes Node's
   * public roots plus this CA. Undone by the returned function or by {@link close}.
   */
  trustInProcess(): () => void {
    if (!this.restoreTrust) {
      const options = https.globalAgent.options as https.AgentOptions;
      const had = Object.prototype.hasOwnProperty.call(options, 'ca');
      const previous = options.ca;
      options.ca = [...tls.rootCertificates, this.caPem];
      this.restoreTrust = () => {
        if (had) options.ca = previous;
        else delete options.ca;
        this.restoreTrust = undefined;
      };
    }
    return this.restoreTrust;
  }

  /** Environment for child processes that must trust the CA: `{ NODE_EXTRA_CA_CERTS: caFile }`. */
  childEnv(): Record<string, string> {
    return { NODE_EXTRA_CA_CERTS: this.caFile };
  }

  /** Undoes {@link trustInProcess} and deletes the temp directory. */
  async close(): Promise<void> {
    this.restoreTrust?.();
    await rm(this.dir, { recursive: true, force: true });
  }

  private once(key: string, make: (base: string) => Promise<IssuedCertificate>): Promise<IssuedCertificate> {
    let cert = this.issued.get(key);
    if (!cert) {
      cert = make(path.join(this.dir, `leaf-${++this.counter}`));
      this.issued.set(key, cert);
    }
    return cert;
  }

  private async sign(names: string[], base: string): Promise<IssuedCertificate> {
    const config = `${base}.cnf`;
    await writeFile(config, leafConfig(names));
    await run('openssl', ['req', '-new', '-config', config, ...NEW_KEY, '-keyout', `${base}.key`, '-out', `${base}.csr`]);
    await run('openssl', ['x509', '-req', '-in', `${base}.csr`, '-CA', this.caFile, '-CAkey', this.caKeyFile, '-set_serial', `0x${randomBytes(8).toString('hex')}`, ...DAYS, '-extfile', config, '-extensions', 'leaf', '-out', `${base}.pem`]);
    return this.read(base);
  }

  private async read(base: string): Promise<IssuedCertificate> {
    const [key, cert] = await Promise.all([readFile(`${base}.key`, 'utf8'), readFile(`${base}.pem`, 'utf8')]);
    return { key, cert, keyFile: `${base}.key`, certFile: `${base}.pem` };
  }
}

/** Makes a new CA in a temp directory (about 20 ms of `openssl`). */
export async function createCertificateAuthority(): Promise<CertificateAuthority> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'postline-fake-ca-'));
  const config = path.join(dir, 'ca.cnf');
  const caFile = path.join(dir, 'ca.pem');
  const keyFile = path.join(dir, 'ca.key');
  await writeFile(config, CA_CONFIG);
  try {
    await run('openssl', ['req', '-x509', '-config', config, '-extensions', 'ca', ...NEW_KEY, '-keyout', keyFile, '-out', caFile, ...DAYS]);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`fake internet: the openssl CLI could not make a test CA (is openssl installed?): ${(err as Error).message}`, { cause: err });
  }
  return new CertificateAuthority(dir, await readFile(caFile, 'utf8'), caFile, keyFile);
}
