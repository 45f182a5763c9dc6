import { test } from 'node:test';
import assert from 'node:assert/strict';
import { livenessProblem, type MembershipState } from './consumer-liveness.js';

const GRACE = 60_000;
const cases: Array<{ name: string; state: MembershipState; now: number; dead: RegExp | null }> = [
  { name: 'a member is alive', state: { member: true, since: 0 }, now: 10 * GRACE, dead: null },
  { name: 'joining (or rebalancing) within the grace is alive', state: { member: false, since: 0 }, now: GRACE, dead: null },
  { name: 'out of the group past the grace is dead', state: { member: false, since: 0 }, now: GRACE + 1, dead: /not a member of its consumer group for 60 s/ },
  { name: 'crashed without restart is dead at once', state: { member: false, since: 0, crashed: 'KafkaJSNonRetriableError: too large' }, now: 1, dead: /crashed and will not restart: KafkaJSNonRetriableError/ },
];

for (const c of cases) {
  test(`livenessProblem: ${c.name}`, () => {
    const p = livenessProblem(c.state, c.now, GRACE);
    if (c.dead === null) assert.equal(p, null);
    else assert.match(p ?? '', c.dead);
  });
}
