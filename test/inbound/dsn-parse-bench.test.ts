/** The DSN parsing benchmark runs and reports both rows against its baseline (a smoke check, not a measurement). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dsnParseBench } from '../bench/dsn-parse.js';

test('dsnParseBench returns parseBounce and mailparser rates from the same run', async () => {
  const rows = await dsnParseBench({ messages: 100, runs: 2 });
  assert.equal(rows.length, 2);
  assert.equal(rows[0].unit, 'messages/s');
  assert.ok(rows[0].value.median > 0 && rows[0].baseline.value.median > 0);
  assert.equal(rows[0].value.runs, 2);
  assert.ok(rows[1].value.median > 0);
  assert.equal(rows[1].target?.value, 0.8);
});
