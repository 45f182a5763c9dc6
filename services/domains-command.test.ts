/**
 * `postline domains check` against the fake internet's DNS server (test/helpers/fake-internet):
 * SPF, DKIM, DMARC and PTR of --address values, and of the routing file's pool addresses
 * against their EHLO names.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { startFakeInternet, type FakeInternet } from '../test/helpers/fake-internet/index.js';
import { runDomainsCommand } from './domains-command.js';
import { runDkimCommand } from './dkim-command.js';
import { dkimRecordValue } from '../shared/dkim/dkim-record.js';

let net: FakeInternet;
let dnsAddress = '';
let keysDir = '';

before(async () => {
  net = await startFakeInternet();
  const zone = net.dns;
  dnsAddress = zone.servers[0];
  keysDir = fs.mkdtempSync(path.join(os.tmpdir(), 'domains-check-'));
  const quiet = { out: () => {}, err: () => {}, env: {} };
  assert.equal(await runDkimCommand(['keygen', '--domain', 'good.test', '--selector', 's1', '--dir', keysDir], quiet), 0);
  assert.equal(await runDkimCommand(['keygen', '--domain', 'broken.test', '--selector', 's1', '--type', 'ed25519', '--dir', keysDir], quiet), 0);
  const good = createPrivateKey(fs.readFileSync(path.join(keysDir, 'good.test', 's1.pem')));
  // A sending domain with everything in place.
  zone.txt('good.test', 'v=spf1 ip4:127.0.0.2 include:_spf.good.test -all');
  zone.txt('_spf.good.test', 'v=spf1 ip4:127.0.0.3 -all');
  zone.txt('s1._domainkey.good.test', dkimRecordValue(good, 'rsa'));
  zone.txt('legacy._domainkey.good.test', 'v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=');
  zone.txt('_dmarc.good.test', 'v=DMARC1; p=reject; rua=mailto:d@good.test');
  for (const n of [2, 3]) {
    zone.ptr(`127.0.0.${n}`, `mta${n}.good.test`);
    zone.a(`mta${n}.good.test`, `127.0.0.${n}`);
  }
  // One where everything is wrong: .3 not in SPF, DKIM published with another key, no DMARC,
  // .4's PTR does not resolve back, .5 has no PTR.
  zone.txt('broken.test', 'v=spf1 ip4:127.0.0.2 ~all');
  zone.txt('s1._domainkey.broken.test', dkimRecordValue(generateKeyPairSync('ed25519').privateKey, 'ed25519'));
  zone.ptr('127.0.0.4', 'mta4.broken.test');
  zone.a('mta4.broken.test', '127.0.0.44');
  zone.txt('_dmarc.none.test', 'v=DMARC1; p=none');
  // A pool address whose PTR is the provider's generic name, not its EHLO name, which resolves elsewhere.
  zone.ptr('127.0.0.6', 'host-6.isp.test');
  zone.a('host-6.isp.test', '127.0.0.6');
  zone.a('mta6.good.test', '127.0.0.66');
});

after(async () => {
  await net?.close();
  if (keysDir) fs.rmSync(keysDir, { recursive: true });
});

/** A routing file with these pools' addresses (`dns.servers`: the fake DNS). */
function routesFile(pools: Record<string, Array<{ address: string; ehlo: string }>>): string {
  const file = path.join(keysDir, `routes-${Object.keys(pools).join('-')}.yaml`);
  const lines = ['dns:', `  servers: ['${dnsAddress}']`, 'routes:', '  direct: { kind: mx }', '  smarthost: { kind: relay }', 'pools:', '  relayed: { route: smarthost }'];
  for (const [name, addresses] of Object.entries(pools)) {
    lines.push(`  ${name}:`, '    route: direct', '    addresses:');
    for (const a of addresses) lines.push(`      - { address: '${a.address}', ehlo: ${a.ehlo} }`);
  }
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

async function run(argv: string[], env: Record<string, string> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runDomainsCommand(['check', ...argv, '--dir', keysDir], { out: (l) => out.push(l), err: (l) => err.push(l), env });
  return { code, out: out.join('\n'), err: err.join('\n') };
}
const check = (...argv: string[]) => run([...argv, '--dns', dnsAddress]);
type JsonFinding = { check: string; subject: string; level: string; message: string; publish?: string };
const findingsOf = (out: string): JsonFinding[] => out.split('\n').map((l) => JSON.parse(l) as JsonFinding);

test('domains check: SPF (through an include), DKIM matching the local key, DMARC reject and forward-confirmed PTRs → exit 0', async () => {
  const r = await check('good.test', '--selector', 'legacy', '--address', '127.0.0.2', '--address', '127.0.0.3');
  assert.equal(r.code, 0, r.out + r.err);
  assert.match(r.out, /^ok {4}SPF {3}127\.0\.0\.3: authorised \(pass\)$/m);
  assert.match(r.out, /^ok {4}DKIM {2}s1\._domainkey\.good\.test: matches .*s1\.pem \(rsa 2048\)$/m);
  assert.match(r.out, /^ok {4}DKIM {2}legacy\._domainkey\.good\.test: published \(k=ed25519\)/m);
  assert.match(r.out, /^ok {4}DMARC _dmarc\.good\.test: p=reject$/m);
  assert.match(r.out, /^ok {4}PTR {3}127\.0\.0\.2: PTR mta2\.good\.test, which resolves back/m);
  assert.match(r.out, /good\.test: nothing wrong/);
});

test('domains check: every missing or wrong record is named with the record to publish → exit 1', async () => {
  const r = await check('broken.test', '--selector', 's2', '--address', '127.0.0.2', '--address', '127.0.0.4', '--address', '127.0.0.5', '--json');
  assert.equal(r.code, 1);
  const findings = r.out.split('\n').map((l) => JSON.parse(l) as { check: string; subject: string; level: string; message: string; publish?: string });
  const find = (check: string, subject: string) => findings.find((f) => f.check === check && f.subject === subject);
  assert.equal(find('spf', '127.0.0.2')?.level, 'ok');
  const spf4 = find('spf', '127.0.0.4')!;
  assert.equal(spf4.level, 'error');
  assert.match(spf4.message, /not authorised: softfail/);
  assert.equal(spf4.publish, 'broken.test. IN TXT "v=spf1 ip4:127.0.0.2 ip4:127.0.0.4 ~all"');
  const s1 = find('dkim', 's1._domainkey.broken.test')!;
  assert.equal(s1.level, 'error');
  assert.match(s1.message, /the published key is not the public key of .*broken\.test\/s1\.pem/);
  const local = fs.readFileSync(path.join(keysDir, 'broken.test', 's1.pem'));
  assert.equal(s1.publish, `s1._domainkey.broken.test. IN TXT "${dkimRecordValue(createPrivateKey(local), 'ed25519')}"`);
  assert.match(find('dkim', 's2._domainkey.broken.test')?.message ?? '', /^no DKIM record$/);
  const dmarc = find('dmarc', '_dmarc.broken.test')!;
  assert.equal(dmarc.level, 'error');
  assert.equal(dmarc.publish, '_dmarc.broken.test. IN TXT "v=DMARC1; p=none; rua=mailto:dmarc-reports@broken.test"');
  assert.match(find('ptr', '127.0.0.4')?.message ?? '', /PTR mta4\.broken\.test does not resolve back to 127\.0\.0\.4/);
  assert.match(find('ptr', '127.0.0.5')?.message ?? '', /^no PTR record/);
  assert.equal(find('ptr', '127.0.0.2')?.level, 'ok');
});

test('domains check: no SPF record at all, DMARC p=none is a warning, bad arguments are usage errors', async () => {
  const r = await check('none.test', '--address', '127.0.0.2');
  assert.equal(r.code, 1);
  assert.match(r.out, /^FAIL {2}SPF {3}none\.test: no SPF record\n {6}publish: none\.test\. IN TXT "v=spf1 ip4:127\.0\.0\.2 -all"$/m);
  assert.match(r.out, /^warn {2}DMARC _dmarc\.none\.test: p=none: receivers only report/m);
  assert.match(r.out, /^FAIL {2}DKIM {2}none\.test: no selector to check/m);
  assert.equal((await check('not a domain')).code, 2);
  assert.equal((await check('good.test', '--address', 'mta.example')).code, 2);
});

test('domains check --routes-file: every pool address of the routing file, its PTR against its EHLO name, DNS from the file', async () => {
  const file = routesFile({
    default: [{ address: '127.0.0.2', ehlo: 'mta2.good.test' }, { address: '127.0.0.3', ehlo: 'mta3.good.test' }],
    bulk: [{ address: '127.0.0.6', ehlo: 'mta6.good.test' }, { address: '127.0.0.2', ehlo: 'mta2.good.test' }],
  });
  // No --dns: the routing file's dns.servers (the fake DNS) are asked.
  const r = await run(['good.test', '--routes-file', file, '--json']);
  assert.equal(r.code, 1, r.out + r.err);
  const findings = findingsOf(r.out);
  const find = (check: string, subject: string) => findings.filter((f) => f.check === check && f.subject === subject);
  assert.deepEqual(findings.filter((f) => f.check === 'ptr').map((f) => f.subject).sort(), ['127.0.0.2', '127.0.0.3', '127.0.0.6'], 'each pool address once');
  assert.equal(find('spf', '127.0.0.2')[0].level, 'ok');
  assert.equal(find('spf', '127.0.0.3')[0].level, 'ok');
  assert.equal(find('spf', '127.0.0.6')[0].level, 'error');
  assert.equal(find('ptr', '127.0.0.2')[0].level, 'ok');
  assert.match(find('ptr', '127.0.0.3')[0].message, /^PTR mta3\.good\.test, the EHLO name, which resolves back/);
  // .6 has forward-confirmed reverse DNS (host-6.isp.test), but not for the name it sends with EHLO.
  const six = find('ptr', '127.0.0.6')[0];
  assert.equal(six.level, 'error');
  assert.match(six.message, /PTR host-6\.isp\.test is not the EHLO name mta6\.good\.test; the EHLO name mta6\.good\.test does not resolve to 127\.0\.0\.6 \(A 127\.0\.0\.66\)/);
  assert.equal(six.publish, '6.0.0.127.in-addr.arpa. IN PTR mta6.good.test.\nmta6.good.test. IN A 127.0.0.6');
});

test('domains check: the configured routing file by default; a good pool passes; a bad routing file is a usage error', async () => {
  const file = routesFile({ default: [{ address: '127.0.0.2', ehlo: 'mta2.good.test' }, { address: '127.0.0.3', ehlo: 'mta3.good.test' }] });
  const r = await run(['good.test', '--selector', 'legacy'], { POSTLINE_DISPATCHER_ROUTES_FILE: file });
  assert.equal(r.code, 0, r.out + r.err);
  assert.match(r.out, /^ok {4}SPF {3}127\.0\.0\.3: authorised \(pass\)$/m);
  assert.match(r.out, /^ok {4}PTR {3}127\.0\.0\.2: PTR mta2\.good\.test, the EHLO name, which resolves back \(forward-confirmed\)$/m);
  // --routes-file '' turns the configured file off: no pool address is checked.
  const none = await run(['good.test', '--selector', 'legacy', '--routes-file', '', '--dns', dnsAddress], { POSTLINE_DISPATCHER_ROUTES_FILE: file });
  assert.equal(none.code, 0);
  assert.doesNotMatch(none.out, /PTR/);
  assert.match(none.out, /^warn {2}SPF {3}good\.test: no pool addresses/m);
  const bad = path.join(keysDir, 'bad-routes.yaml');
  fs.writeFileSync(bad, 'routes: {}\npools: { default: { route: nowhere } }\n');
  const refused = await run(['good.test', '--routes-file', bad]);
  assert.equal(refused.code, 2);
  assert.match(refused.err, /pools\.default\.route: no route named "nowhere"/);
});
