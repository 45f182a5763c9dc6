/**
 * POST /v1/emails/batch: each item is accepted or refused on its own, in order, and only the
 * accepted ones reach email.requested.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Topics } from '../../shared/topics.js';
import { IngestHarness, auth, email } from './ingest-harness.js';
import type { IngestHandle } from '../../services/ingest/main.js';

let h: IngestHarness;
let ingest: IngestHandle;

before(async () => {
  h = await IngestHarness.start();
  ingest = await h.ingest({ 'ingest.maxAttachmentBytes': 100 });
  await h.collect();
});
after(() => h.stop());

const batch = (messages: unknown[], headers: Record<string, string> = auth('acme')) =>
  ingest.app.inject({ method: 'POST', url: '/v1/emails/batch', headers, payload: { messages } });

interface Result {
  index: number;
  status: number;
  id?: string;
  error?: { code: string; fields?: Array<{ field: string }> };
}

test('valid and invalid items mixed: 207, a result per item, only the valid ones produced', async () => {
  const before = await h.endOffset(Topics.requested);
  const res = await batch([
    email({ subject: 'one' }),
    email({ to: ['a@example.org\r\nBcc: victim@example.net'] }),
    email({ subject: 'three', priority: 'bulk' }),
    { nonsense: true },
    email({ attachments: [{ filename: 'big', content: Buffer.alloc(200).toString('base64') }] }),
    email({ subject: 'six', to: 'Zoë <zoe@bücher.de>' }),
  ]);
  assert.equal(res.statusCode, 207);
  const results: Result[] = res.json().results;
  assert.deepEqual(
    results.map((r) => [r.index, r.status]),
    [[0, 202], [1, 400], [2, 202], [3, 400], [4, 413], [5, 202]],
  );
  assert.deepEqual(results[1].error?.fields?.map((f) => f.field), ['to.0']);
  assert.ok(results[3].error?.fields?.some((f) => f.field === 'nonsense'));
  assert.equal(results[4].error?.code, 'PAYLOAD_TOO_LARGE');

  const accepted = [results[0], results[2], results[5]];
  assert.equal(new Set(accepted.map((r) => r.id)).size, 3, 'each item its own id');
  const subjects = [];
  for (const r of accepted) {
    const [record] = await h.waitForKey(Topics.requested, r.id!);
    subjects.push(record.value.subject);
    assert.equal((await h.waitForKey(Topics.events, r.id!))[0].value.type, 'accepted');
  }
  assert.deepEqual(subjects, ['one', 'three', 'six']);
  assert.equal(await h.endOffset(Topics.requested), before + 3, 'exactly the three valid items were produced');
});

test('an all-valid batch is 202; a batch over 500 or not a batch is refused whole', async () => {
  const ok = await batch([email(), email()]);
  assert.equal(ok.statusCode, 202);
  assert.deepEqual(ok.json().results.map((r: Result) => r.status), [202, 202]);

  const before = await h.endOffset(Topics.requested);
  const tooMany = await batch(Array.from({ length: 501 }, () => email()));
  assert.equal(tooMany.statusCode, 400);
  assert.deepEqual(tooMany.json().error.fields.map((f: { field: string }) => f.field), ['messages']);
  assert.equal((await batch([])).statusCode, 400);
  const notABatch = await ingest.app.inject({ method: 'POST', url: '/v1/emails/batch', headers: auth('acme'), payload: email() });
  assert.equal(notABatch.statusCode, 400);
  assert.equal((await batch([email()], {})).statusCode, 401);
  assert.equal(await h.endOffset(Topics.requested), before, 'nothing produced');
});

test('a batch retried with the same Idempotency-Key returns the same ids and sends nothing again', async () => {
  const messages = [email({ subject: 'a' }), email({ subject: 'b', idempotencyKey: 'own-key' }), email({ to: 'bad' })];
  const first = await batch(messages, { ...auth('acme'), 'idempotency-key': 'batch-1' });
  assert.equal(first.statusCode, 207);
  const before = await h.endOffset(Topics.requested);
  const again = await batch(messages, { ...auth('acme'), 'idempotency-key': 'batch-1' });
  assert.deepEqual(again.json().results, first.json().results);
  assert.equal(await h.endOffset(Topics.requested), before, 'the retry produced nothing');
  const [record] = await h.waitForKey(Topics.requested, first.json().results[1].id);
  assert.equal(record.value.idempotencyKey, 'own-key', 'an item’s own key wins over the derived one');
});
