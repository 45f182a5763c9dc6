import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PartitionHolds } from './partition-holds.js';

test('a held partition is paused at once and resumed once after its time; a new hold replaces the old; clear drops them', async () => {
  const holds = new PartitionHolds();
  const log: string[] = [];
  const pause = (name: string) => () => {
    log.push(`pause ${name}`);
    return () => log.push(`resume ${name}`);
  };
  let resumed!: () => void;
  const done = new Promise<void>((r) => (resumed = r));
  holds.hold('t', 0, 60_000, pause('a'));
  holds.hold('t', 0, 5, () => {
    log.push('pause b');
    return () => {
      log.push('resume b');
      resumed();
    };
  });
  holds.hold('t', 1, 60_000, pause('c'));
  assert.deepEqual(log, ['pause a', 'pause b', 'pause c']);
  assert.equal(holds.size, 2);
  await done;
  assert.deepEqual(log.slice(3), ['resume b'], 'the replaced hold never resumes');
  assert.equal(holds.size, 1);
  holds.clear();
  assert.equal(holds.size, 0);
});
