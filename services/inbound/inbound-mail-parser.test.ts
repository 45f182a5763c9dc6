import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cutUtf8, parseInboundMail, UnparseableMail } from './inbound-mail-parser.js';
import { TEMPERROR, checkAuth, verdictsOf } from './inbound-mail-auth.js';

const limits = { maxTextBytes: 1024, maxAttachmentBytes: 1024, maxAttachmentsTotalBytes: 4096, maxHeaderBytes: 4096, maxParts: 10 };

test('cutUtf8 keeps whole characters within the byte limit', () => {
  assert.deepEqual(cutUtf8('abc', 3), { value: 'abc', cut: false });
  assert.deepEqual(cutUtf8('abcd', 3), { value: 'abc', cut: true });
  assert.deepEqual(cutUtf8('ééé', 5), { value: 'éé', cut: true });
  assert.deepEqual(cutUtf8('a😀b', 4), { value: 'a', cut: true });
  assert.deepEqual(cutUtf8('a😀b', 5), { value: 'a😀', cut: true });
});

test('parseInboundMail: groups flattened, folded headers unfolded, references as a list; over the part limit is UnparseableMail', async () => {
  const raw = Buffer.from(
    'From: "A, B" <ab@x.test>\r\nTo: Team: one@x.test, two@x.test;\r\nSubject: folded\r\n  subject\r\nReferences: <r1@x.test>\r\nDate: Tue, 1 Dec 2026 10:00:00 +0000\r\n\r\nhi\r\n',
  );
  const parsed = await parseInboundMail(raw, limits);
  assert.deepEqual(parsed.from, [{ address: 'ab@x.test', name: 'A, B' }]);
  assert.deepEqual(parsed.to?.map((a) => a.address), ['one@x.test', 'two@x.test']);
  assert.deepEqual(parsed.headers.find(([n]) => n === 'Subject'), ['Subject', 'folded  subject']);
  assert.deepEqual(parsed.references, ['<r1@x.test>']);
  assert.equal(parsed.date, '2026-12-01T10:00:00.000Z');
  assert.equal(parsed.text?.trim(), 'hi');
  const parts = Array.from({ length: 20 }, (_, i) => `--b\r\n\r\np${i}\r\n`).join('');
  await assert.rejects(parseInboundMail(Buffer.from(`Content-Type: multipart/mixed; boundary=b\r\n\r\n${parts}--b--\r\n`), limits), UnparseableMail);
});

test('verdictsOf reads mailauth’s result; checkAuth answers temperror when DNS never answers in time', async () => {
  assert.deepEqual(verdictsOf({ spf: { status: { result: 'softfail' } }, dkim: { results: [{ status: { result: 'fail' } }, { status: { result: 'pass' } }] }, dmarc: false } as never), { spf: 'softfail', dkim: 'pass', dmarc: 'none' });
  assert.deepEqual(verdictsOf({ spf: false, dkim: { results: [] }, dmarc: { status: { result: 'fail' } } } as never), { spf: 'none', dkim: 'none', dmarc: 'fail' });
  const never = () => new Promise<never>(() => {});
  const started = Date.now();
  const verdicts = await checkAuth(Buffer.from('From: a@x.test\r\n\r\nhi\r\n'), { ip: '192.0.2.1', sender: 'a@x.test', mta: 'mx.test', resolver: never, timeoutMs: 200 });
  assert.deepEqual(verdicts, TEMPERROR);
  assert.ok(Date.now() - started < 5000);
});
