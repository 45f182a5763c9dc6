import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ValidationError } from '../errors.js';
import { EmailRequestedContract } from './email-requested.js';

const record = (data: string) =>
  `{"schemaVersion":1,"messageId":"m1","tenant":"acme","acceptedAt":"2026-01-01T00:00:00Z","priority":"bulk","from":{"email":"a@example.com"},"to":[{"email":"b@example.org"}],"template":{"name":"welcome","data":${data}}}`;
const deep = (n: number) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`;

test('decode: a record nested 10,000 or 1,000,000 deep (a foreign producer) is a ValidationError, not a crash', () => {
  for (const n of [10_000, 1_000_000]) {
    assert.throws(() => EmailRequestedContract.decode(record(deep(n))), (err: unknown) => err instanceof ValidationError && /nested more than/.test(err.message), `depth ${n}`);
  }
  // Data as deep as the send API allows still decodes.
  assert.equal(EmailRequestedContract.decode(record(deep(31))).template?.name, 'welcome');
});

test('decode: a template name that is a path is refused (the renderer never looks it up)', () => {
  for (const name of ['eu/welcome', '../x', 'a'.repeat(129)]) {
    assert.throws(() => EmailRequestedContract.decode(record('{}').replace('"welcome"', JSON.stringify(name))), (err: unknown) => err instanceof ValidationError && /template\.name/.test(err.message), name);
  }
});
