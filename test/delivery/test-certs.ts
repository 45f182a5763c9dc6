/** A test CA and certificates it signs, made with the openssl CLI (verify-mode TLS, MTA-STS over HTTPS). */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface TestPki {
  dir: string;
  caFile: string;
  caPem: string;
  /** A key and certificate for `name`, signed by the CA. */
  issue(name: string): { key: string; cert: string };
  remove(): void;
}

export function makeTestPki(): TestPki {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'postline-pki-'));
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=Postline Test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  let serial = 1;
  return {
    dir,
    caFile: path.join(dir, 'ca.pem'),
    caPem: fs.readFileSync(path.join(dir, 'ca.pem'), 'utf8'),
    issue(name) {
      const base = `leaf-${serial}`;
      fs.writeFileSync(path.join(dir, `${base}.ext`), `subjectAltName=DNS:${name}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`);
      run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', `/CN=${name}`);
      run('x509', '-req', '-in', `${base}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', String(serial++), '-days', '2', '-out', `${base}.pem`, '-extfile', `${base}.ext`);
      return { key: fs.readFileSync(path.join(dir, `${base}.key`), 'utf8'), cert: fs.readFileSync(path.join(dir, `${base}.pem`), 'utf8') };
    },
    remove() {
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
