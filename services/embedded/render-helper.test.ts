import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { BacklogWatch, IdleExit, secondRendererSpec, SECOND_RENDERER } from './render-helper.js';
import { SECOND_RENDERER_NODE_FLAGS, STAGE_NODE_FLAGS } from '../../shared/node-flags.js';

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

/** A BacklogWatch over a renderer's consumer events and a co-hosted ingest's, and the signals it gave. */
function intakeWatch(threshold: number): { signals: number[]; consumer: EventEmitter; ingest: EventEmitter; watch: BacklogWatch } {
  const signals: number[] = [];
  const consumer = new EventEmitter();
  const ingest = new EventEmitter();
  const watch = new BacklogWatch({ threshold, signal: (n) => signals.push(n), now: clock().now }).watch(consumer).watchIntake(ingest);
  return { signals, consumer, ingest, watch };
}

test('BacklogWatch: messages the co-hosted ingest accepted and the renderer has not rendered count as a backlog, before any batch shows it', () => {
  const { signals, consumer, ingest, watch } = intakeWatch(100);
  for (let i = 0; i < 150; i++) ingest.emit('accepted', 'transactional', true);
  assert.equal(watch.backlog(), 0, 'scheduled messages wait for the scheduler, not the renderer');
  for (let i = 0; i < 99; i++) {
    ingest.emit('accepted', 'transactional', false);
    consumer.emit('processed', 'email.requested.transactional');
    // A record dead-lettered is also 'processed' (counted once); one that failed comes again.
    if (i % 3 === 0) consumer.emit(i % 2 === 0 ? 'deadLettered' : 'failed', 'email.requested.transactional');
  }
  assert.deepEqual(signals, [], 'a renderer keeping up is no backlog');
  for (let i = 0; i < 100; i++) ingest.emit('accepted', 'bulk', false);
  assert.deepEqual(signals, [100], 'signalled as the 100th unrendered message is accepted');
  assert.equal(watch.backlog(), 100);
  for (let i = 0; i < 30; i++) consumer.emit('processed', 'email.requested.bulk');
  assert.equal(watch.backlog(), 70);
  consumer.emit('backlog', 'email.requested.bulk', 0, 500);
  assert.equal(watch.backlog(), 500, 'the consumer\'s own count when it is larger');
});

test('BacklogWatch: while the second renderer holds every partition, what the ingest accepts is not this renderer\'s backlog', () => {
  const { signals, consumer, ingest, watch } = intakeWatch(10);
  consumer.emit('rebalanced', 'postline-renderer-transactional', 2);
  consumer.emit('rebalanced', 'postline-renderer-bulk', 2);
  for (let i = 0; i < 10; i++) ingest.emit('accepted', 'bulk', false);
  assert.deepEqual(signals, [10]);
  // The second renderer joins and takes every partition (PostlinePreferred): counts start over, at zero.
  consumer.emit('rebalanced', 'postline-renderer-transactional', 0);
  consumer.emit('rebalanced', 'postline-renderer-bulk', 0);
  for (let i = 0; i < 50; i++) ingest.emit('accepted', 'bulk', false);
  assert.equal(watch.backlog(), 0);
  assert.deepEqual(signals, [10], 'no signal while the other renderer has the work');
  // It leaves: this renderer holds partitions again, and a new burst is signalled at once.
  consumer.emit('rebalanced', 'postline-renderer-bulk', 2);
  for (let i = 0; i < 10; i++) ingest.emit('accepted', 'bulk', false);
  assert.deepEqual(signals, [10, 10]);
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

test('the second renderer: `postline stages renderer`, preferred, exits when idle, with a renderer\'s young generation, a heap that grows at most 2× and the user\'s flags after', () => {
  const spec = secondRendererSpec({ env: { A: '1' }, nodeFlags: ['--cpu-prof'], idleMs: 60_000 });
  assert.equal(spec.name, SECOND_RENDERER);
  assert.deepEqual(spec.args, ['stages', 'renderer', '--exit-when-idle', '60000', '--preferred-renderer']);
  assert.deepEqual(spec.nodeFlags, [...SECOND_RENDERER_NODE_FLAGS, '--cpu-prof']);
  assert.ok(SECOND_RENDERER_NODE_FLAGS.includes('--max-semi-space-size=16'), 'V8\'s default young generation, not the 64 MB one of a renderer alone');
  assert.ok(!STAGE_NODE_FLAGS.every((f) => SECOND_RENDERER_NODE_FLAGS.includes(f)));
  assert.ok(SECOND_RENDERER_NODE_FLAGS.includes('--heap-growing-percent=100'));
  assert.equal(spec.onDemand, true);
  assert.equal(spec.ready?.({ msg: 'stages ready' }), true);
});
