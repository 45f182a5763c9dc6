/**
 * A self-signed certificate for the gateway where no real one is configured (`npm start`):
 * generated once into a directory and reused, made again when it is missing, unreadable or
 * expires within 30 days. The key pair comes from Node's crypto (RSA 2048), the X.509
 * certificate is built and signed with node-forge (no openssl CLI needed). Clients must be told
 * to accept it (nodemailer `tls: { rejectUnauthorized: false }`; swaks does not verify by default).
 */
import fs from 'node:fs';
import path from 'node:path';
import { X509Certificate, generateKeyPairSync, randomBytes } from 'node:crypto';
import forge from 'node-forge';

export interface CertFiles {
  keyFile: string;
  certFile: string;
}

const DAY = 24 * 3600_000;

function stillValid(certFile: string, now: number): boolean {
  try {
    return new Date(new X509Certificate(fs.readFileSync(certFile)).validTo).getTime() > now + 30 * DAY;
  } catch {
    return false;
  }
}

/**
 * A random 16-byte serial that DER encodes as a positive INTEGER without padding: the first
 * byte's high bit clear (else it would read as negative) and its next bit set (a leading zero
 * byte before one whose high bit is clear is "illegal padding" to OpenSSL — the old
 * `0` + 30 hex digits made half of all certificates unreadable).
 */
export function serialHex(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] & 0x3f) | 0x40;
  return bytes.toString('hex');
}

/** A PEM key and certificate for `localhost` and 127.0.0.1, valid 825 days from a day before `now`. */
export function selfSignedPem(now = Date.now()): { key: string; cert: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey);
  cert.serialNumber = serialHex();
  cert.validity.notBefore = new Date(now - DAY);
  cert.validity.notAfter = new Date(now + 825 * DAY);
  const subject = [{ name: 'commonName', value: 'localhost' }, { name: 'organizationName', value: 'Postline (self-signed)' }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }] },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(privateKey), forge.md.sha256.create());
  return { key: privateKey, cert: forge.pki.certificateToPem(cert) };
}

/** The key and certificate files in `dir`, made when needed. */
export function ensureSelfSignedCert(dir: string, now = Date.now()): CertFiles {
  const files = { keyFile: path.join(dir, 'smtp-gateway-key.pem'), certFile: path.join(dir, 'smtp-gateway-cert.pem') };
  if (fs.existsSync(files.keyFile) && stillValid(files.certFile, now)) return files;
  fs.mkdirSync(dir, { recursive: true });
  const pem = selfSignedPem(now);
  // Written aside and renamed into place: a process reading the files while another makes them
  // (the launcher and a gateway, two runs on one data dir) sees an old or a new file, never half of one.
  writeAtomically(files.keyFile, pem.key, 0o600);
  writeAtomically(files.certFile, pem.cert, 0o644);
  return files;
}

function writeAtomically(file: string, content: string, mode: number): void {
  const aside = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  fs.writeFileSync(aside, content, { mode });
  fs.renameSync(aside, file);
}
