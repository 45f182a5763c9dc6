import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { BacklogWatch, IdleExit, secondRendererSpec, SECOND_RENDERER } from './render-helper.js';
import { STAGE_NODE_FLAGS } from '../../shared/node-flags.js';

function clock(): { now: () => number; advance(ms: number): void } {
  let t = 1_000_000;
  return { now: () => t, advance: (ms) => (t += ms) };
}

test('BacklogWatch: signals when the records waiting, summed over partitions, reach the threshold; then stays quiet for quietMs', () => {
  const c = clock();
  const signals: number[] = [];
  const events = new EventEmitter();
  new BacklogWatch({ threshold: 1000, signal: (n) => signals.push(n), now: c.now, quietMs: 10_000 }).watch(events);
  events.emit('backlog', 'email.requested.bulk', 0, 600);
  assert.deepEqual(signals, [], 'one partition under the threshold');
  events.emit('backlog', 'email.requested.bulk', 1, 500);
  assert.deepEqual(signals, [1100], 'two partitions together over it');
  events.emit('backlog', 'email.requested.bulk', 1, 5000);
  assert.deepEqual(signals, [1100], 'quiet within quietMs');
  c.advance(10_000);
  events.emit('backlog', 'email.requested.bulk', 0, 10);
  assert.deepEqual(signals, [1100, 5010], 'again after quietMs');
});

test('BacklogWatch: a partition\'s report goes stale after freshMs and is forgotten at a rebalance (partitions move), which also ends the quiet period', () => {
  const c = clock();
  const signals: number[] = [];
  const events = new EventEmitter();
  const watch = new BacklogWatch({ threshold: 1000, signal: (n) => signals.push(n), now: c.now, freshMs: 5000 }).watch(events);
  events.emit('backlog', 't', 0, 900);
  c.advance(6000);
  events.emit('backlog', 't', 1, 900);
  assert.deepEqual(signals, [], 'the stale report does not count');
  assert.equal(watch.backlog(), 900);
  events.emit('rebalanced');
  assert.equal(watch.backlog(), 0);
  events.emit('backlog', 't', 0, 200);
  assert.deepEqual(signals, []);
  events.emit('backlog', 't', 1, 900);
  assert.deepEqual(signals, [1100]);
  events.emit('rebalanced');
  events.emit('backlog', 't', 0, 1500);
  assert.deepEqual(signals, [1100, 1500], 'a backlog right after a rebalance is signalled at once, quiet period or not');
});

test('IdleExit: exits once no batch arrived with a backlog for idleMs, once; a trickle does not keep it, a backlog starts the wait over', () => {
  const c = clock();
  let exits = 0;
  const events = new EventEmitter();
  const idle = new IdleExit({ idleMs: 4000, busyAt: 50, exit: () => exits++, now: c.now }).watch(events);
  try {
    c.advance(3000);
    idle.check();
    events.emit('backlog', 't', 0, 50);
    c.advance(3000);
    events.emit('backlog', 't', 0, 1);
    events.emit('backlog', 't', 1, 49);
    idle.check();
    assert.equal(exits, 0);
    c.advance(1000);
    idle.check();
    idle.check();
    assert.equal(exits, 1);
  } finally {
    idle.stop();
  }
});

test('the second renderer: `postline stages renderer`, preferred, exits when idle, with a renderer\'s young generation and the user\'s flags after', () => {
  const spec = secondRendererSpec({ env: { A: '1' }, nodeFlags: ['--cpu-prof'], idleMs: 60_000 });
  assert.equal(spec.name, SECOND_RENDERER);
  assert.deepEqual(spec.args, ['stages', 'renderer', '--exit-when-idle', '60000', '--preferred-renderer']);
  assert.deepEqual(spec.nodeFlags, [...STAGE_NODE_FLAGS, '--cpu-prof']);
  assert.equal(spec.onDemand, true);
  assert.equal(spec.ready?.({ msg: 'stages ready' }), true);
});
