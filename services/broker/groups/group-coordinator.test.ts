import { describe, test, beforeEach, afterEach, mock } from 'node:test';
import assert from 'node:assert/strict';
import { GroupCoordinator, type JoinRequest, type JoinResult, type SyncResult } from './group-coordinator.js';

const SESSION = 6_000;
const REBALANCE = 20_000;
const G = 'g';

let gc: GroupCoordinator;

function joinReq(memberId = '', over: Partial<JoinRequest> = {}): JoinRequest {
  return {
    groupId: G,
    memberId,
    groupInstanceId: null,
    clientId: 'c',
    clientHost: '127.0.0.1',
    sessionTimeoutMs: SESSION,
    rebalanceTimeoutMs: REBALANCE,
    protocolType: 'consumer',
    protocols: [{ name: 'range', metadata: Buffer.from('m') }],
    ...over,
  };
}

/** Lets settled promises run their callbacks (no timers involved). */
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Tracks a promise so a test can ask whether it has settled yet. */
function track<T>(p: Promise<T>): { done: () => boolean; value: () => T; promise: Promise<T> } {
  let v: T | undefined;
  let settled = false;
  void p.then((x) => {
    v = x;
    settled = true;
  });
  return { done: () => settled, value: () => v as T, promise: p };
}

/** A member joins a fresh group alone and becomes the stable leader; returns its id and generation. */
async function stableSingle(): Promise<{ id: string; gen: number }> {
  const j = await gc.join(joinReq());
  assert.equal(j.error, 'NONE');
  const s = await gc.sync(G, j.memberId, j.generationId, [{ memberId: j.memberId, assignment: Buffer.from('A') }]);
  assert.equal(s.error, 'NONE');
  return { id: j.memberId, gen: j.generationId };
}

/** Two members in a stable generation: returns [leader, follower]. */
async function stablePair(): Promise<{ a: string; b: string; gen: number }> {
  const { id: a } = await stableSingle();
  const bJoin = track(gc.join(joinReq()));
  await settle();
  assert.equal(gc.group(G)?.state, 'PreparingRebalance');
  assert.equal(bJoin.done(), false, 'the new member waits for the existing one to rejoin');
  assert.equal(gc.heartbeat(G, a, 1), 'REBALANCE_IN_PROGRESS');
  const aJoin = await gc.join(joinReq(a));
  const b = await bJoin.promise;
  assert.equal(aJoin.generationId, 2);
  assert.equal(b.generationId, 2);
  const sa = gc.sync(G, a, 2, [
    { memberId: a, assignment: Buffer.from('A') },
    { memberId: b.memberId, assignment: Buffer.from('B') },
  ]);
  const sb = await gc.sync(G, b.memberId, 2, []);
  assert.equal((await sa).error, 'NONE');
  assert.equal(sb.assignment.toString(), 'B');
  return { a, b: b.memberId, gen: 2 };
}

describe('GroupCoordinator', () => {
  beforeEach(() => {
    mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 1_000_000 });
    gc = new GroupCoordinator({ minSessionTimeoutMs: 1000, maxSessionTimeoutMs: 60_000, initialRebalanceDelayMs: 0 });
  });
  afterEach(() => {
    gc.close();
    mock.timers.reset();
  });

  describe('join validation', () => {
    const cases: Array<[string, Partial<JoinRequest>, string]> = [
      ['an empty group id', { groupId: '' }, 'INVALID_GROUP_ID'],
      ['a session timeout below the minimum', { sessionTimeoutMs: 999 }, 'INVALID_SESSION_TIMEOUT'],
      ['a session timeout above the maximum', { sessionTimeoutMs: 60_001 }, 'INVALID_SESSION_TIMEOUT'],
      ['no protocols', { protocols: [] }, 'INCONSISTENT_GROUP_PROTOCOL'],
      ['an unknown member id', { memberId: 'ghost' }, 'UNKNOWN_MEMBER_ID'],
    ];
    for (const [name, over, error] of cases) {
      test(`rejects ${name}`, async () => {
        const r = await gc.join(joinReq(over.memberId ?? '', over));
        assert.equal(r.error, error);
      });
    }

    test('rejects a member whose protocols share nothing with the group', async () => {
      await stableSingle();
      const r = await gc.join(joinReq('', { protocols: [{ name: 'other', metadata: Buffer.alloc(0) }] }));
      assert.equal(r.error, 'INCONSISTENT_GROUP_PROTOCOL');
      const t = await gc.join(joinReq('', { protocolType: 'connect' }));
      assert.equal(t.error, 'INCONSISTENT_GROUP_PROTOCOL');
      assert.equal(gc.group(G)?.state, 'Stable', 'a refused member does not disturb the group');
    });
  });

  test('a lone member becomes leader of generation 1 and gets its own assignment', async () => {
    const j = await gc.join(joinReq());
    assert.deepEqual([j.error, j.generationId, j.leader, j.members.length], ['NONE', 1, j.memberId, 1]);
    assert.equal(gc.group(G)?.state, 'CompletingRebalance');
    const s = await gc.sync(G, j.memberId, 1, [{ memberId: j.memberId, assignment: Buffer.from('x') }]);
    assert.deepEqual([s.error, s.assignment.toString()], ['NONE', 'x']);
    assert.equal(gc.group(G)?.state, 'Stable');
  });

  test('a second member triggers a rebalance; only the leader gets the member list', async () => {
    const { a, b } = await stablePair();
    const g = gc.group(G)!;
    assert.equal(g.leader, a);
    assert.deepEqual([...g.members.keys()].sort(), [a, b].sort());
  });

  test('a follower that syncs before the leader waits for the leader’s assignment', async () => {
    const { id: a } = await stableSingle();
    const bJoin = gc.join(joinReq());
    await settle();
    await gc.join(joinReq(a));
    const b = await bJoin;
    const fs = track(gc.sync(G, b.memberId, 2, []));
    await settle();
    assert.equal(fs.done(), false);
    await gc.sync(G, a, 2, [{ memberId: b.memberId, assignment: Buffer.from('B') }]);
    await settle();
    assert.equal(fs.value().assignment.toString(), 'B');
  });

  test('a retried SyncGroup while the first still waits: both get the assignment', async () => {
    const { id: a } = await stableSingle();
    const bJoin = gc.join(joinReq());
    await settle();
    await gc.join(joinReq(a));
    const b = await bJoin;
    const s1 = track(gc.sync(G, b.memberId, 2, []));
    const s2 = track(gc.sync(G, b.memberId, 2, []));
    await settle();
    assert.equal(s1.done() || s2.done(), false);
    await gc.sync(G, a, 2, [{ memberId: b.memberId, assignment: Buffer.from('B') }]);
    await settle();
    assert.deepEqual([s1.value().assignment.toString(), s2.value().assignment.toString()], ['B', 'B']);
  });

  describe('heartbeats', () => {
    test('per state', async () => {
      const j = await gc.join(joinReq());
      assert.equal(gc.heartbeat(G, j.memberId, 1), 'NONE', 'CompletingRebalance: heartbeats are fine');
      await gc.sync(G, j.memberId, 1, []);
      assert.equal(gc.heartbeat(G, j.memberId, 1), 'NONE', 'Stable');
      assert.equal(gc.heartbeat(G, j.memberId, 0), 'ILLEGAL_GENERATION', 'old generation while stable');
      assert.equal(gc.heartbeat(G, 'ghost', 1), 'UNKNOWN_MEMBER_ID');
      assert.equal(gc.heartbeat('nope', j.memberId, 1), 'UNKNOWN_MEMBER_ID');
      void gc.join(joinReq());
      assert.equal(gc.heartbeat(G, j.memberId, 1), 'REBALANCE_IN_PROGRESS', 'PreparingRebalance: rejoin');
    });

    test('a heartbeat keeps a member alive; silence past the session timeout removes it and rebalances', async () => {
      const { a, b } = await stablePair();
      for (let t = 0; t < 3; t++) {
        mock.timers.tick(SESSION / 3 - 100);
        assert.equal(gc.heartbeat(G, a, 2), 'NONE');
      }
      assert.equal(gc.group(G)?.members.has(b), true, 'b is within its session timeout');
      mock.timers.tick(400);
      // b never heartbeated: it is gone, and a is told to rejoin.
      assert.equal(gc.group(G)?.members.has(b), false);
      assert.equal(gc.heartbeat(G, a, 2), 'REBALANCE_IN_PROGRESS');
      const r = await gc.join(joinReq(a));
      assert.deepEqual([r.error, r.generationId, r.members.length], ['NONE', 3, 1]);
      assert.equal(gc.heartbeat(G, b, 2), 'UNKNOWN_MEMBER_ID');
    });
  });

  test('an idle group whose member heartbeats wakes the coordinator when a session could lapse (less often than it heartbeats), not every 100 ms', async () => {
    const { id: a } = await stableSingle();
    const sweeps = mock.method(gc as unknown as { expireSessions(): void }, 'expireSessions');
    // A minute of heartbeats every third of the session: nothing lapses.
    for (let t = 0; t < 60_000; t += SESSION / 3) {
      mock.timers.tick(SESSION / 3);
      assert.equal(gc.heartbeat(G, a, 1), 'NONE');
    }
    assert.ok(sweeps.mock.callCount() < 60_000 / (SESSION / 3), `${sweeps.mock.callCount()} sweeps in an idle minute`);
    // Silent, the member still lapses at its session timeout.
    mock.timers.tick(SESSION + 1);
    assert.equal(gc.group(G)?.members.size, 0);
  });

  describe('rebalance edge cases', () => {
    test('a member rejoining during CompletingRebalance restarts the join; pending syncs are told to rejoin', async () => {
      const { a, b } = await stablePair();
      void gc.join(joinReq()); // c arrives
      await settle();
      const aj = gc.join(joinReq(a));
      const bj = gc.join(joinReq(b));
      const cj = await Promise.all([aj, bj]);
      assert.equal(cj[0].generationId, 3);
      assert.equal(gc.group(G)?.state, 'CompletingRebalance');
      const bs = track(gc.sync(G, b, 3, []));
      await settle();
      // b's join response was lost: it rejoins while the group is completing.
      const bRejoin = track(gc.join(joinReq(b)));
      await settle();
      assert.equal(bs.done(), true);
      assert.equal(bs.value().error, 'REBALANCE_IN_PROGRESS');
      assert.equal(gc.group(G)?.state, 'PreparingRebalance');
      // The leader's late sync for generation 3 is refused, so no one acts on a stale assignment.
      const late = await gc.sync(G, a, 3, [{ memberId: a, assignment: Buffer.from('A') }]);
      assert.equal(late.error, 'REBALANCE_IN_PROGRESS');
      // Everyone rejoins and generation 4 completes.
      const members = [...gc.group(G)!.members.keys()];
      const rejoins = members.filter((m) => m !== b).map((m) => gc.join(joinReq(m)));
      const results = await Promise.all([...rejoins, bRejoin.promise]);
      assert.ok(results.every((r: JoinResult) => r.error === 'NONE' && r.generationId === 4));
    });

    test('a retried JoinGroup of a parked member waits with the first; both get the same answer', async () => {
      const { a, b } = await stablePair();
      const first = track(gc.join(joinReq(a)));
      await settle();
      const second = track(gc.join(joinReq(a)));
      await settle();
      assert.equal(first.done(), false, 'no answer yet: the group still waits for b');
      await gc.join(joinReq(b));
      await settle();
      for (const r of [first.value(), second.value()]) assert.deepEqual([r.error, r.generationId, r.members.length], ['NONE', 3, 2]);
      assert.equal(gc.group(G)?.members.size, 2, 'no ghost member');
    });

    test('members that do not rejoin within the rebalance timeout are dropped', async () => {
      const { a, b } = await stablePair();
      const aj = track(gc.join(joinReq(a)));
      // b keeps heartbeating (it is alive, just slow to rejoin) but never rejoins.
      for (let t = 0; t < REBALANCE; t += 2_000) {
        mock.timers.tick(2_000);
        if (gc.group(G)?.state === 'PreparingRebalance') assert.equal(gc.heartbeat(G, b, 2), 'REBALANCE_IN_PROGRESS');
      }
      await settle();
      assert.equal(aj.done(), true);
      assert.deepEqual([aj.value().generationId, aj.value().members.length], [3, 1]);
      assert.equal(gc.group(G)?.members.has(b), false);
    });

    test('a member parked in JoinGroup is not expired by its session timeout', async () => {
      const { a, b } = await stablePair();
      const aj = track(gc.join(joinReq(a)));
      mock.timers.tick(SESSION + 1_000); // b is silent: it expires, which completes a's join
      await settle();
      assert.equal(aj.done(), true);
      assert.equal(aj.value().error, 'NONE');
      assert.equal(gc.group(G)?.members.has(a), true);
      assert.equal(gc.group(G)?.members.has(b), false);
    });

    test('the leader leaving during CompletingRebalance hands leadership to a remaining member', async () => {
      const { a, b } = await stablePair();
      void gc.join(joinReq(a));
      const bj = await gc.join(joinReq(b));
      assert.equal(bj.leader, a);
      const bs = track(gc.sync(G, b, 3, []));
      assert.deepEqual(gc.leave(G, [a]), ['NONE']);
      await settle();
      assert.equal(bs.value().error, 'REBALANCE_IN_PROGRESS');
      const again = await gc.join(joinReq(b));
      assert.deepEqual([again.error, again.leader, again.generationId], ['NONE', b, 4]);
    });

    test('initialRebalanceDelayMs gathers members that join an empty group within the delay', async () => {
      gc.close();
      gc = new GroupCoordinator({ minSessionTimeoutMs: 1000, maxSessionTimeoutMs: 60_000, initialRebalanceDelayMs: 3_000 });
      const first = track(gc.join(joinReq()));
      const second = track(gc.join(joinReq()));
      await settle();
      assert.equal(first.done() || second.done(), false, 'nobody completes before the delay');
      mock.timers.tick(3_000);
      await settle();
      assert.equal(first.value().generationId, 1);
      assert.equal(second.value().generationId, 1);
      assert.equal(first.value().leader, second.value().leader);
    });
  });

  describe('MEMBER_ID_REQUIRED (JoinGroup v4+)', () => {
    test('a new member gets an id, is not a member until it joins with it, then joins normally', async () => {
      const first = await gc.join(joinReq('', { requireMemberId: true }));
      assert.equal(first.error, 'MEMBER_ID_REQUIRED');
      assert.ok(first.memberId);
      assert.equal(gc.group(G)?.members.size ?? 0, 0);
      const second = await gc.join(joinReq(first.memberId, { requireMemberId: true }));
      assert.deepEqual([second.error, second.memberId, second.generationId, second.leader], ['NONE', first.memberId, 1, first.memberId]);
      const replay = await gc.join(joinReq('made-up-id', { requireMemberId: true }));
      assert.equal(replay.error, 'UNKNOWN_MEMBER_ID');
    });

    test('an abandoned first join leaves no ghost: its id lapses after the session timeout', async () => {
      const { id: a } = await stableSingle();
      const ghost = await gc.join(joinReq('', { requireMemberId: true }));
      assert.equal(ghost.error, 'MEMBER_ID_REQUIRED');
      assert.equal(gc.group(G)?.state, 'Stable', 'asking for an id does not start a rebalance');
      mock.timers.tick(SESSION / 2);
      assert.equal(gc.heartbeat(G, a, 1), 'NONE');
      mock.timers.tick(SESSION / 2 + 200);
      assert.equal((await gc.join(joinReq(ghost.memberId, { requireMemberId: true }))).error, 'UNKNOWN_MEMBER_ID');
    });
  });

  describe('leave', () => {
    test('a batch (LeaveGroup v3) removes known members and reports unknown ones; one rebalance', async () => {
      const { a, b } = await stablePair();
      assert.deepEqual(gc.leave(G, [b, 'ghost', a]), ['NONE', 'UNKNOWN_MEMBER_ID', 'NONE']);
      const g = gc.group(G)!;
      assert.equal(g.members.size, 0);
      assert.equal(g.state, 'Empty');
      assert.equal(g.generation, 3);
    });

    test('leaving an unknown group', () => {
      assert.deepEqual(gc.leave('nope', ['x']), ['UNKNOWN_MEMBER_ID']);
    });

    test('a member leaving while others wait in JoinGroup completes the join without it', async () => {
      const { a, b } = await stablePair();
      const aj = track(gc.join(joinReq(a)));
      await settle();
      gc.leave(G, [b]);
      await settle();
      assert.deepEqual([aj.value().error, aj.value().members.length], ['NONE', 1]);
    });
  });

  describe('offset commit checks', () => {
    test('per state and generation', async () => {
      assert.equal(gc.checkCommit('fresh', '', -1), 'NONE', 'simple commit to an unknown group (admin tools)');
      const j = await gc.join(joinReq());
      assert.equal(gc.checkCommit(G, j.memberId, 1), 'REBALANCE_IN_PROGRESS', 'CompletingRebalance');
      await gc.sync(G, j.memberId, 1, []);
      assert.equal(gc.checkCommit(G, j.memberId, 1), 'NONE', 'Stable');
      assert.equal(gc.checkCommit(G, j.memberId, 0), 'ILLEGAL_GENERATION');
      assert.equal(gc.checkCommit(G, 'ghost', 1), 'UNKNOWN_MEMBER_ID');
      assert.equal(gc.checkCommit(G, '', -1), 'UNKNOWN_MEMBER_ID', 'simple commit to a group with members');
      void gc.join(joinReq());
      assert.equal(gc.checkCommit(G, j.memberId, 1), 'NONE', 'PreparingRebalance: the current generation may still commit');
    });
  });

  describe('delete', () => {
    test('only empty groups', async () => {
      const { id } = await stableSingle();
      assert.equal(gc.deleteGroup(G), 'NON_EMPTY_GROUP');
      gc.leave(G, [id]);
      assert.equal(gc.deleteGroup(G), 'NONE');
      assert.equal(gc.group(G), undefined);
      assert.equal(gc.deleteGroup(G), 'GROUP_ID_NOT_FOUND');
    });
  });

  test('a restored group continues its generation numbering', async () => {
    gc.restore(G, 'consumer', 41);
    const j = await gc.join(joinReq());
    assert.equal(j.generationId, 42);
  });

  test('close releases parked requests', async () => {
    await stableSingle();
    const other = track(gc.join(joinReq()));
    await settle();
    gc.close();
    await settle();
    assert.equal(other.value().error, 'COORDINATOR_NOT_AVAILABLE');
  });

  describe('connections and client ids', () => {
    test('a member whose connection closes leaves at once; the others must rejoin without it', async () => {
      const a = await gc.join(joinReq('', { connectionId: 1 }));
      await gc.sync(G, a.memberId, 1, [{ memberId: a.memberId, assignment: Buffer.from('A') }]);
      const bJoin = track(gc.join(joinReq('', { connectionId: 2, clientId: 'other' })));
      await settle();
      const aRejoin = await gc.join(joinReq(a.memberId, { connectionId: 1 }));
      const b = await bJoin.promise;
      assert.equal(aRejoin.generationId, 2);
      const gone: string[] = [];
      gc.on('memberDisconnected', (_g: string, id: string) => gone.push(id));
      gc.connectionClosed(1);
      assert.deepEqual(gone, [a.memberId]);
      assert.equal(gc.group(G)?.members.has(a.memberId), false);
      assert.equal(gc.group(G)?.state, 'PreparingRebalance');
      assert.equal(gc.heartbeat(G, b.memberId, 2), 'REBALANCE_IN_PROGRESS');
      const bRejoin = await gc.join(joinReq(b.memberId, { connectionId: 2, clientId: 'other' }));
      assert.equal(bRejoin.generationId, 3, 'the group went on without the closed member, without waiting for its session');
      assert.equal(bRejoin.leader, b.memberId);
      gc.connectionClosed(1);
      assert.equal(gc.group(G)?.members.size, 1, 'closing a connection twice changes nothing');
    });

    test('a member goes with the connection it last used, not one it used before', async () => {
      const j = await gc.join(joinReq('', { connectionId: 1 }));
      await gc.sync(G, j.memberId, 1, [{ memberId: j.memberId, assignment: Buffer.from('A') }], 1);
      assert.equal(gc.heartbeat(G, j.memberId, 1, 2), 'NONE');
      gc.connectionClosed(1);
      assert.equal(gc.group(G)?.members.has(j.memberId), true, 'its requests come on connection 2 now');
      gc.connectionClosed(2);
      assert.equal(gc.group(G)?.members.has(j.memberId), false);
      assert.equal(gc.group(G)?.state, 'Empty');
    });

    test('a rebalance names the client ids of the members that must rejoin, who await it until they have', async () => {
      const a = await gc.join(joinReq('', { clientId: 'acme' }));
      await gc.sync(G, a.memberId, 1, [{ memberId: a.memberId, assignment: Buffer.from('A') }]);
      const named: string[] = [];
      gc.on('rejoinNeeded', (clientId: string) => named.push(clientId));
      assert.equal(gc.awaitingRejoin('acme'), false);
      const bJoin = track(gc.join(joinReq('', { clientId: 'acme/eu' })));
      await settle();
      assert.deepEqual(named, ['acme'], 'the joining member is not told to rejoin');
      assert.equal(gc.awaitingRejoin('acme'), true);
      assert.equal(gc.awaitingRejoin('acme/eu'), false, 'a prefix of another client id is another client');
      assert.equal(gc.awaitingRejoin('acm'), false);
      const aRejoin = track(gc.join(joinReq(a.memberId, { clientId: 'acme' })));
      await settle();
      assert.equal(gc.awaitingRejoin('acme'), false, 'it has rejoined');
      await Promise.all([aRejoin.promise, bJoin.promise]);
      assert.equal(gc.awaitingRejoin('acme'), false);
    });

    test('a member that leaves, lapses or is dropped at a rebalance timeout is forgotten by client id', async () => {
      const { id } = await stableSingle();
      gc.leave(G, [id]);
      assert.equal(gc.awaitingRejoin('c'), false);
      const a = await gc.join(joinReq('', { clientId: 'x' }));
      await gc.sync(G, a.memberId, a.generationId, [{ memberId: a.memberId, assignment: Buffer.from('A') }]);
      const bJoin = track(gc.join(joinReq('', { clientId: 'y' })));
      await settle();
      assert.equal(gc.awaitingRejoin('x'), true);
      mock.timers.tick(REBALANCE);
      await settle();
      assert.equal((await bJoin.promise).error, 'NONE');
      assert.equal(gc.group(G)?.members.has(a.memberId), false, 'dropped: it did not rejoin in time');
      assert.equal(gc.awaitingRejoin('x'), false);
    });
  });

  test('sync results for unknown members and generations', async () => {
    const j = await gc.join(joinReq());
    const r: SyncResult[] = await Promise.all([gc.sync(G, 'ghost', 1, []), gc.sync(G, j.memberId, 7, [])]);
    assert.deepEqual(r.map((x) => x.error), ['UNKNOWN_MEMBER_ID', 'ILLEGAL_GENERATION']);
  });
});
