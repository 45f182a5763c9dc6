import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { withConfigReference } from '../../shared/config-docs.js';

test('the README configuration reference is generated from the schema and up to date', () => {
  const readme = fs.readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  assert.equal(withConfigReference(readme), readme, 'run `node services/postline.mjs config readme` and commit README.md');
});

test('the README starts with the two commands: run the pipeline, pass the tests', () => {
  const readme = fs.readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const firstBlock = /```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
  assert.match(firstBlock, /npm start/);
  assert.match(firstBlock, /bash \.ci\/run/);
  const ci = fs.readFileSync(new URL('../../.ci/run', import.meta.url), 'utf8');
  assert.match(ci, /npm test/);
});
