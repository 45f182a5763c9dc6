/**
 * The self-signed certificate files are replaced atomically: a reader in another process, while
 * two processes regenerate them over and over, never reads half a file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { ensureSelfSignedCert, selfSignedPem, serialHex } from './self-signed-cert.js';

const MODULE = fileURLToPath(new URL('./self-signed-cert.ts', import.meta.url));
const YEARS = 5 * 365 * 24 * 3600_000;

test('regenerating while another process reads: every read is a whole key and certificate; no files left aside', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'postline-cert-'));
  try {
    const files = ensureSelfSignedCert(dir);
    // `now` years ahead: each call finds the certificate expiring and makes a new one.
    const script = `const m = await import(${JSON.stringify(MODULE)}); for (let i = 0; i < 15; i++) m.ensureSelfSignedCert(${JSON.stringify(dir)}, Date.now() + ${YEARS});`;
    const writers = [0, 1].map(() => spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: 'inherit' }));
    const done = Promise.all(writers.map((w) => new Promise<number | null>((resolve) => w.on('exit', resolve))));
    let finished = false;
    void done.then(() => (finished = true));
    let reads = 0;
    const bad: string[] = [];
    while (!finished) {
      try {
        new X509Certificate(fs.readFileSync(files.certFile));
        createPrivateKey(fs.readFileSync(files.keyFile));
      } catch (err) {
        bad.push((err as Error).message);
      }
      reads++;
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.deepEqual(await done, [0, 0]);
    assert.ok(reads > 50, `only ${reads} reads`);
    assert.deepEqual(bad, [], `${bad.length} of ${reads} reads saw a partial file`);
    assert.deepEqual(fs.readdirSync(dir).sort(), ['smtp-gateway-cert.pem', 'smtp-gateway-key.pem']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('every certificate made is readable by OpenSSL (its serial a minimal positive DER integer)', () => {
  for (let i = 0; i < 200; i++) assert.match(serialHex(), /^[4-7][0-9a-f]{31}$/);
  // Before, about half failed with ERR_OSSL_ASN1_ILLEGAL_PADDING: 12 in a row passing by chance is 1 in 4096.
  for (let i = 0; i < 12; i++) {
    const { key, cert } = selfSignedPem();
    const x509 = new X509Certificate(cert);
    assert.ok(x509.checkPrivateKey(createPrivateKey(key)));
    assert.match(x509.serialNumber, /^[4-7][0-9A-F]{31}$/);
  }
});
