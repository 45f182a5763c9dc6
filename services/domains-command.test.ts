/**
 * `postline domains check` against a DNS server on 127.0.0.1 (a small dns2 server here; the
 * fake internet's DNS in test/helpers/fake-internet serves the same records once it is merged).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import dns2 from 'dns2';
import { runDomainsCommand } from './domains-command.js';
import { runDkimCommand } from './dkim-command.js';
import { dkimRecordValue, txtStrings } from '../shared/dkim/dkim-record.js';

const { Packet } = dns2;
type Rec = { type: 'A' | 'TXT' | 'PTR'; value: string | string[] };
const zone = new Map<string, Rec[]>();
const add = (name: string, type: Rec['type'], value: string | string[]): void => {
  zone.set(name.toLowerCase(), [...(zone.get(name.toLowerCase()) ?? []), { type, value }]);
};

let server: ReturnType<typeof dns2.createServer>;
let dnsAddress = '';
let keysDir = '';

before(async () => {
  server = dns2.createServer({
    udp: true,
    handle: (request, send) => {
      const response = Packet.createResponseFromRequest(request);
      const [q] = request.questions;
      const type = Object.entries(Packet.TYPE).find(([, code]) => code === q.type)?.[0];
      const records = zone.get(q.name.toLowerCase());
      if (!records) (response.header as { rcode: number }).rcode = 3; // NXDOMAIN
      for (const r of records?.filter((x) => x.type === type) ?? []) {
        const base = { name: q.name, type: q.type, class: Packet.CLASS.IN, ttl: 60 };
        // dns2's types want Resource instances; its encoder takes plain records.
        const answer = r.type === 'A' ? { ...base, address: r.value } : r.type === 'TXT' ? { ...base, data: r.value } : { ...base, domain: r.value };
        response.answers.push(answer as never);
      }
      send(response);
    },
  });
  const listening = await server.listen({ udp: { port: 0, address: '127.0.0.1' } });
  dnsAddress = `127.0.0.1:${(listening as { udp: { port: number } }).udp.port}`;
  keysDir = fs.mkdtempSync(path.join(os.tmpdir(), 'domains-check-'));
  const quiet = { out: () => {}, err: () => {}, env: {} };
  assert.equal(await runDkimCommand(['keygen', '--domain', 'good.test', '--selector', 's1', '--dir', keysDir], quiet), 0);
  assert.equal(await runDkimCommand(['keygen', '--domain', 'broken.test', '--selector', 's1', '--type', 'ed25519', '--dir', keysDir], quiet), 0);
  const { createPrivateKey } = await import('node:crypto');
  const good = createPrivateKey(fs.readFileSync(path.join(keysDir, 'good.test', 's1.pem')));
  // A sending domain with everything in place.
  add('good.test', 'TXT', 'v=spf1 ip4:127.0.0.2 include:_spf.good.test -all');
  add('_spf.good.test', 'TXT', 'v=spf1 ip4:127.0.0.3 -all');
  add('s1._domainkey.good.test', 'TXT', txtStrings(dkimRecordValue(good, 'rsa')));
  add('legacy._domainkey.good.test', 'TXT', 'v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=');
  add('_dmarc.good.test', 'TXT', 'v=DMARC1; p=reject; rua=mailto:d@good.test');
  for (const n of [2, 3]) {
    add(`${n}.0.0.127.in-addr.arpa`, 'PTR', `mta${n}.good.test`);
    add(`mta${n}.good.test`, 'A', `127.0.0.${n}`);
  }
  // One where everything is wrong: .3 not in SPF, DKIM published with another key, no DMARC,
  // .4's PTR does not resolve back, .5 has no PTR.
  add('broken.test', 'TXT', 'v=spf1 ip4:127.0.0.2 ~all');
  add('s1._domainkey.broken.test', 'TXT', dkimRecordValue(generateKeyPairSync('ed25519').privateKey, 'ed25519'));
  add('4.0.0.127.in-addr.arpa', 'PTR', 'mta4.broken.test');
  add('mta4.broken.test', 'A', '127.0.0.44');
  add('2.0.0.127.in-addr.arpa', 'PTR', 'mta2.good.test');
  add('_dmarc.none.test', 'TXT', 'v=DMARC1; p=none');
});

after(async () => {
  await server?.close();
  if (keysDir) fs.rmSync(keysDir, { recursive: true });
});

async function check(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runDomainsCommand(['check', ...argv, '--dns', dnsAddress, '--dir', keysDir], { out: (l) => out.push(l), err: (l) => err.push(l), env: {} });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

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
  const { createPrivateKey } = await import('node:crypto');
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
