import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { runDkimCommand } from './dkim-command.js';
import { readKeyDirectory } from '../shared/dkim/dkim-keys.js';
import { dkimSign } from '../shared/dkim/dkim-signer.js';

async function run(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runDkimCommand(argv, { out: (l) => out.push(l), err: (l) => err.push(l), env: {} });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/** The TXT value from a printed zone line: its quoted strings, concatenated as a resolver does. */
function txtFrom(output: string): { strings: string[]; value: string } {
  const strings = [...output.matchAll(/"([^"]*)"/g)].map((m) => m[1]);
  return { strings, value: strings.join('') };
}

test('dkim keygen: writes a 0600 PKCS#8 key per type and prints a TXT record (≤255-char strings) that verifies its signatures', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dkim-cmd-'));
  try {
    for (const [type, selector] of [['rsa', 'r2026'], ['ed25519', 'e2026']] as const) {
      const r = await run('keygen', '--domain', 'Example.COM', '--selector', selector, '--type', type, '--dir', dir);
      assert.equal(r.code, 0, r.err);
      const file = path.join(dir, 'example.com', `${selector}.pem`);
      assert.equal(fs.statSync(file).mode & 0o777, 0o600);
      assert.match(fs.readFileSync(file, 'utf8'), /^-----BEGIN PRIVATE KEY-----/);
      assert.match(r.out, new RegExp(`^${selector}\\._domainkey\\.example\\.com\\. IN TXT`, 'm'));
      const { strings, value } = txtFrom(r.out);
      assert.ok(strings.every((s) => s.length <= 255), `strings of ${strings.map((s) => s.length).join(', ')}`);
      if (type === 'rsa') assert.ok(strings.length > 1, 'an RSA-2048 record needs two strings');
      assert.match(value, new RegExp(`^v=DKIM1; k=${type}; p=[A-Za-z0-9+/=]+$`));
      // The printed record, served to an independent verifier, accepts what the renderer signs with the written key.
      const { table } = await readKeyDirectory(dir);
      const key = table.domains.get('example.com')!.keys.find((k) => k.selector === selector)!;
      const signed = await dkimSign(Buffer.from('From: a@example.com\r\nTo: b@example.org\r\nSubject: s\r\n\r\nbody\r\n'), key, new Date());
      const resolver = async (name: string): Promise<string[][]> => {
        if (name === `${selector}._domainkey.example.com`) return [strings];
        throw Object.assign(new Error('nx'), { code: 'ENOTFOUND' });
      };
      const { results } = await dkimVerify(signed.raw, { resolver });
      assert.equal(results[0].status.result, 'pass', `${type}: ${JSON.stringify(results[0].status)}`);
    }
    const list = await run('list', '--dir', dir);
    assert.equal(list.code, 0, list.err);
    assert.match(list.out, /example\.com\s+e2026\s+ed25519\s+\s+/);
    assert.match(list.out, /example\.com\s+r2026\s+rsa 2048\s+yes/, 'the last selector by name signs');
    const json = (await run('list', '--dir', dir, '--json')).out.split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(json.map((j) => [j.selector, j.signs]), [['e2026', false], ['r2026', true]]);
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});

test('dkim keygen: never overwrites without --force; refuses weak RSA and bad names; list reports bad key files (exit 1)', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dkim-cmd-'));
  try {
    assert.equal((await run('keygen', '--domain', 'example.com', '--selector', 's1', '--type', 'ed25519', '--dir', dir)).code, 0);
    const file = path.join(dir, 'example.com', 's1.pem');
    const before = fs.readFileSync(file, 'utf8');
    const again = await run('keygen', '--domain', 'example.com', '--selector', 's1', '--type', 'ed25519', '--dir', dir);
    assert.equal(again.code, 1);
    assert.match(again.err, /s1\.pem exists; choose another selector, or pass --force/);
    assert.equal(fs.readFileSync(file, 'utf8'), before);
    fs.chmodSync(file, 0o644);
    assert.equal((await run('keygen', '--domain', 'example.com', '--selector', 's1', '--type', 'ed25519', '--dir', dir, '--force')).code, 0);
    assert.notEqual(fs.readFileSync(file, 'utf8'), before);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.match((await run('keygen', '--domain', 'example.com', '--selector', 's2', '--bits', '1024', '--dir', dir)).err, /--bits must be 2048 to 8192/);
    assert.match((await run('keygen', '--domain', 'not a domain', '--selector', 's2', '--dir', dir)).err, /not a domain name/);
    assert.match((await run('keygen', '--domain', 'example.com', '--selector', 'a b', '--dir', dir)).err, /not a valid selector/);
    assert.equal((await run('keygen', '--domain', 'example.com')).code, 1, 'no directory configured');
    assert.equal((await run('rotate')).code, 2);
    fs.writeFileSync(path.join(dir, 'example.com', 'broken.pem'), 'nope');
    const list = await run('list', '--dir', dir);
    assert.equal(list.code, 1);
    assert.match(list.err, /problem: .*broken\.pem: not a readable unencrypted PEM private key/);
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});
