import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Priority } from '../../shared/config.js';
import { admit, afterAdmission, reserveAt, shareLimit, withinShare, type Admission, type AdmissionState } from './fleet-admission.js';

const reserve = { critical: 2, transactional: 1 };
const state = (over: Partial<Omit<AdmissionState, 'busy'>> & { busy?: Partial<Record<Priority, number>> }): AdmissionState => ({
  cap: 10,
  reserve,
  idle: 0,
  opening: 0,
  total: 0,
  ...over,
  busy: { critical: 0, transactional: 0, bulk: 0, ...over.busy },
});

test('shareLimit: nested reservation, never below one connection', () => {
  const cases: Array<[number, Priority, number]> = [
    [10, 'critical', 10],
    [10, 'transactional', 8],
    [10, 'bulk', 7],
    [3, 'bulk', 1],
    [1, 'bulk', 1],
    [1, 'transactional', 1],
    [1, 'critical', 1],
  ];
  for (const [cap, p, expected] of cases) assert.equal(shareLimit(cap, reserve, p), expected, `${p} of ${cap}`);
});

test('reserves scale with small caps: at most a third of the cap each, critical keeps one from cap 2', () => {
  const defaults = { critical: 4, transactional: 2 };
  // [cap, reserve, in force, limits of critical / transactional (+ bulk) / bulk]
  const cases: Array<[number, typeof defaults, typeof defaults, [number, number, number]]> = [
    [20, defaults, { critical: 4, transactional: 2 }, [20, 16, 14]],
    [12, defaults, { critical: 4, transactional: 2 }, [12, 8, 6]],
    [10, defaults, { critical: 3, transactional: 2 }, [10, 7, 5]],
    [6, defaults, { critical: 2, transactional: 2 }, [6, 4, 2]],
    [5, defaults, { critical: 1, transactional: 1 }, [5, 4, 3]],
    [3, defaults, { critical: 1, transactional: 1 }, [3, 2, 1]],
    [2, defaults, { critical: 1, transactional: 0 }, [2, 1, 1]],
    [1, defaults, { critical: 0, transactional: 0 }, [1, 1, 1]],
    [5, { critical: 0, transactional: 0 }, { critical: 0, transactional: 0 }, [5, 5, 5]],
    [10, { critical: 2, transactional: 1 }, { critical: 2, transactional: 1 }, [10, 8, 7]],
  ];
  for (const [cap, configured, inForce, [c, t, b]] of cases) {
    assert.deepEqual(reserveAt(cap, configured), inForce, `reserves at cap ${cap}`);
    assert.deepEqual([shareLimit(cap, configured, 'critical'), shareLimit(cap, configured, 'transactional'), shareLimit(cap, configured, 'bulk')], [c, t, b], `limits at cap ${cap}`);
  }
  // Critical always has a connection it may take (cap ≥ 2): with the rest busy, it is admitted.
  for (let cap = 2; cap <= 12; cap++) {
    let s: AdmissionState = { cap, reserve: defaults, busy: { critical: 0, transactional: 0, bulk: 0 }, idle: 0, opening: 0, total: 0 };
    for (const p of ['bulk', 'transactional'] as const) {
      while (admit(s, p) !== 'wait') s = afterAdmission(s, p, admit(s, p));
    }
    assert.ok(s.busy.bulk >= 1, `cap ${cap}: bulk got one`);
    assert.equal(admit(s, 'critical'), 'open', `cap ${cap}: critical still gets one`);
  }
});

test('admit: decisions by priority and fleet state', () => {
  const cases: Array<[string, AdmissionState, Priority, Admission]> = [
    ['empty fleet opens', state({}), 'bulk', 'open'],
    ['idle connection is used', state({ idle: 1, total: 1 }), 'bulk', 'use-idle'],
    ['a connection on its way serves the request', state({ opening: 1, total: 1 }), 'transactional', 'await-opening'],
    ['bulk stops at its share (7 of 10)', state({ busy: { bulk: 7 }, idle: 3, total: 10 }), 'bulk', 'wait'],
    ['transactional still gets one while bulk holds its share', state({ busy: { bulk: 7 }, idle: 3, total: 10 }), 'transactional', 'use-idle'],
    ['critical still gets one while bulk holds its share', state({ busy: { bulk: 7 }, total: 7 }), 'critical', 'open'],
    ['no new connection while the host breaker is open', state({ busy: { bulk: 1 }, total: 1, canOpen: false }), 'critical', 'wait'],
    ['an idle connection is still used while the breaker is open', state({ idle: 1, total: 1, canOpen: false }), 'bulk', 'use-idle'],
    ['transactional + bulk stop at 8 of 10', state({ busy: { bulk: 7, transactional: 1 }, idle: 2, total: 10 }), 'transactional', 'wait'],
    ['critical gets the reserved ones', state({ busy: { bulk: 7, transactional: 1 }, idle: 2, total: 10 }), 'critical', 'use-idle'],
    ['bulk waits even with idle connections when its share is used', state({ busy: { bulk: 7, transactional: 1 }, idle: 2, total: 10 }), 'bulk', 'wait'],
    ['everyone waits when the whole fleet is busy', state({ busy: { critical: 3, transactional: 3, bulk: 4 }, total: 10 }), 'critical', 'wait'],
    ['critical may use connections transactional does not', state({ busy: { critical: 5, transactional: 3 }, total: 8 }), 'critical', 'open'],
    ['no growth past the cap', state({ cap: 3, busy: { critical: 1 }, total: 3, opening: 0 }), 'critical', 'wait'],
    ['a lowered cap below the open count blocks growth', state({ cap: 2, busy: { critical: 1 }, total: 4 }), 'critical', 'wait'],
    ['cap 1: bulk may still use it when free', state({ cap: 1, idle: 1, total: 1 }), 'bulk', 'use-idle'],
    ['cap 1: critical waits only for the one message in flight', state({ cap: 1, busy: { bulk: 1 }, total: 1 }), 'critical', 'wait'],
  ];
  for (const [name, s, p, expected] of cases) assert.equal(admit(s, p), expected, name);
});

test('withinShare holds for every priority at once: bulk alone can never fill the fleet', () => {
  let s = state({ cap: 10, total: 0 });
  let bulkLeases = 0;
  while (admit(s, 'bulk') !== 'wait') {
    s = afterAdmission(s, 'bulk', admit(s, 'bulk'));
    bulkLeases++;
  }
  assert.equal(bulkLeases, 7);
  assert.equal(withinShare(s, 'critical'), true);
  assert.equal(admit(s, 'critical'), 'open');
});

test('afterAdmission accounts the decision', () => {
  const s = state({ idle: 1, opening: 1, total: 3 });
  assert.deepEqual(afterAdmission(s, 'critical', 'use-idle'), { ...s, idle: 0, busy: { ...s.busy, critical: 1 } });
  assert.deepEqual(afterAdmission(s, 'bulk', 'await-opening'), { ...s, opening: 0, busy: { ...s.busy, bulk: 1 } });
  assert.deepEqual(afterAdmission(s, 'transactional', 'open'), { ...s, total: 4, busy: { ...s.busy, transactional: 1 } });
  assert.equal(afterAdmission(s, 'bulk', 'wait'), s);
});
