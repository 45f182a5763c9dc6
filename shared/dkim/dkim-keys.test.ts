import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { keyFor, parseDkimKey, readKeyDirectory, signingCandidates } from './dkim-keys.js';

const pem = (type: 'rsa' | 'ed25519' | 'ec', bits = 2048): string => {
  const pair =
    type === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: bits }) : type === 'ec' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519');
  return pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
};

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'dkim-keys-'));
}

function put(dir: string, rel: string, content: string): void {
  fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
  fs.writeFileSync(path.join(dir, rel), content);
}

test('parseDkimKey: RSA ≥ 2048 and Ed25519 load; a weak, non-DKIM or unreadable key is an error naming the file', () => {
  const rsa = parseDkimKey(pem('rsa'), '/k/a.pem', 'example.com', 'a');
  assert.equal(rsa.key?.type, 'rsa');
  assert.equal(rsa.key?.bits, 2048);
  assert.equal(parseDkimKey(pem('ed25519'), '/k/b.pem', 'example.com', 'b').key?.type, 'ed25519');
  assert.match(parseDkimKey(pem('rsa', 1024), '/k/weak.pem', 'example.com', 'weak').error ?? '', /^\/k\/weak\.pem: an RSA key of 1024 bits is too weak/);
  assert.match(parseDkimKey(pem('ec'), '/k/ec.pem', 'example.com', 'ec').error ?? '', /^\/k\/ec\.pem: a ec key; DKIM keys are RSA/);
  assert.match(parseDkimKey('not a key', '/k/junk.pem', 'example.com', 'junk').error ?? '', /^\/k\/junk\.pem: not a readable unencrypted PEM private key/);
  const encrypted = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'x' }) as string;
  assert.match(parseDkimKey(encrypted, '/k/enc.pem', 'example.com', 'enc').error ?? '', /^\/k\/enc\.pem: not a readable unencrypted/);
});

test('signingCandidates: the From domain, then parents down to the registrable domain, never a public suffix', () => {
  const cases: Array<[string, string[]]> = [
    ['example.com', ['example.com']],
    ['mail.eu.Example.COM', ['mail.eu.example.com', 'eu.example.com', 'example.com']],
    ['news.shop.co.uk', ['news.shop.co.uk', 'shop.co.uk']],
    ['shop.example', ['shop.example']],
    ['a.b.test', ['a.b.test', 'b.test']],
    ['news.acme.github.io', ['news.acme.github.io', 'acme.github.io']],
  ];
  for (const [from, want] of cases) assert.deepEqual(signingCandidates(from), want, from);
});

test('readKeyDirectory: domains and selectors, the active file or the last selector signs, dot entries and bad files skipped with their names', async () => {
  const dir = tmp();
  put(dir, 'example.com/s2025.pem', pem('rsa'));
  put(dir, 'example.com/s2026.pem', pem('ed25519'));
  put(dir, 'Rotated.Example/old.pem', pem('ed25519'));
  put(dir, 'Rotated.Example/new.pem', pem('ed25519'));
  put(dir, 'Rotated.Example/active', 'old\n');
  put(dir, 'weak.example/s1.pem', pem('rsa', 1024));
  put(dir, '..2026_12_03/ignored.example/s1.pem', pem('ed25519'));
  put(dir, 'README', 'not a domain directory');
  put(dir, 'bad_name!/s1.pem', pem('ed25519'));
  const { table, issues } = await readKeyDirectory(dir);
  assert.deepEqual([...table.domains.keys()].sort(), ['example.com', 'rotated.example']);
  const example = table.domains.get('example.com')!;
  assert.deepEqual(example.keys.map((k) => k.selector), ['s2025', 's2026']);
  assert.equal(example.active.selector, 's2026');
  assert.equal(example.activeBy, 'last-selector');
  const rotated = table.domains.get('rotated.example')!;
  assert.equal(rotated.active.selector, 'old');
  assert.equal(rotated.activeBy, 'active-file');
  assert.equal(issues.length, 2, issues.join('\n'));
  assert.ok(issues.some((i) => i.startsWith(path.join(dir, 'weak.example/s1.pem')) && /1024 bits is too weak/.test(i)));
  assert.ok(issues.some((i) => i.includes('bad_name!')));
  // The most specific domain with a key signs; a sibling's key never does.
  assert.equal(keyFor(table, 'news.example.com')?.domain, 'example.com');
  assert.equal(keyFor(table, 'example.com')?.selector, 's2026');
  assert.equal(keyFor(table, 'example.org'), undefined);
  assert.equal(keyFor(table, 'notexample.com'), undefined);
  fs.rmSync(dir, { recursive: true });
});

test('readKeyDirectory: an unchanged file is not parsed again; a key that turns bad keeps its last good version, with the problem reported', async () => {
  const dir = tmp();
  put(dir, 'example.com/s1.pem', pem('ed25519'));
  const first = await readKeyDirectory(dir);
  const again = await readKeyDirectory(dir, first.table);
  assert.equal(again.table.domains.get('example.com')!.active.privateKey, first.table.domains.get('example.com')!.active.privateKey, 'same KeyObject');
  put(dir, 'example.com/s1.pem', '-----BEGIN PRIVATE KEY-----\ntruncated');
  const broken = await readKeyDirectory(dir, again.table);
  assert.equal(broken.table.domains.get('example.com')!.active.privateKey, first.table.domains.get('example.com')!.active.privateKey);
  assert.match(broken.issues.join('\n'), /s1\.pem: not a readable.*keeping the key loaded before/);
  fs.rmSync(dir, { recursive: true });
});

test('readKeyDirectory: an active file naming a missing selector is reported and the last selector signs', async () => {
  const dir = tmp();
  put(dir, 'example.com/a.pem', pem('ed25519'));
  put(dir, 'example.com/b.pem', pem('ed25519'));
  put(dir, 'example.com/active', 'zzz');
  const { table, issues } = await readKeyDirectory(dir);
  assert.equal(table.domains.get('example.com')!.active.selector, 'b');
  assert.match(issues.join('\n'), /active: names selector "zzz", which has no usable key/);
  fs.rmSync(dir, { recursive: true });
});
