import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsonShapeProblem } from './json-limits.js';

const nested = (depth: number): unknown => {
  let v: unknown = 1;
  for (let i = 1; i < depth; i++) v = i % 2 ? { a: v } : [v];
  return v;
};

test('depth and value count are bounded without recursion', () => {
  const limits = { maxDepth: 32, maxValues: 1000 };
  assert.equal(jsonShapeProblem(nested(32), limits), undefined);
  assert.match(jsonShapeProblem(nested(33), limits) ?? '', /more than 32 levels/);
  assert.match(jsonShapeProblem(nested(200_000), limits) ?? '', /more than 32 levels/);
  assert.equal(jsonShapeProblem({ a: [1, 2, { b: 'x' }], c: null }, limits), undefined);
  assert.match(jsonShapeProblem(Array.from({ length: 1000 }, (_, i) => i), limits) ?? '', /more than 1000 values/);
  assert.equal(jsonShapeProblem('scalar', limits), undefined);
});
