import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addAssignmentError, createAssignmentError } from './replica-assignment.js';

const create: Array<[string, Array<{ partitionIndex: number; brokerIds: number[] }>, RegExp | null]> = [
  ['this node for every partition', [{ partitionIndex: 0, brokerIds: [1] }, { partitionIndex: 1, brokerIds: [1] }], null],
  ['a broker that does not exist', [{ partitionIndex: 0, brokerIds: [2] }], /unknown broker\(s\) 2/],
  ['this node plus a missing one', [{ partitionIndex: 0, brokerIds: [1, 3] }], /unknown broker\(s\) 3/],
  ['an empty replica list', [{ partitionIndex: 0, brokerIds: [] }], /empty/],
  ['a broker twice', [{ partitionIndex: 0, brokerIds: [1, 1] }], /twice/],
  ['a gap in partition indexes', [{ partitionIndex: 0, brokerIds: [1] }, { partitionIndex: 2, brokerIds: [1] }], /0\.\.1/],
];
for (const [name, assignments, expected] of create) {
  test(`CreateTopics assignment: ${name}`, () => {
    const err = createAssignmentError(assignments, 1);
    if (expected === null) assert.equal(err, null);
    else assert.match(err ?? '', expected);
  });
}

const add: Array<[string, number[][], number, RegExp | null]> = [
  ['one list per new partition', [[1], [1]], 2, null],
  ['a missing broker', [[1], [7]], 2, /unknown broker\(s\) 7/],
  ['too few lists', [[1]], 2, /1 replica lists given for 2/],
];
for (const [name, lists, n, expected] of add) {
  test(`CreatePartitions assignment: ${name}`, () => {
    const err = addAssignmentError(lists, n, 1);
    if (expected === null) assert.equal(err, null);
    else assert.match(err ?? '', expected);
  });
}
