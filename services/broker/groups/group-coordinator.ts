/**
 * The classic Kafka consumer-group protocol (JoinGroup / SyncGroup / Heartbeat / LeaveGroup):
 * members join, the coordinator waits until every known member has rejoined (or the rebalance
 * timeout drops the laggards), bumps the generation, hands the member list to the leader, and
 * distributes the leader's assignment. A member that stops heartbeating past its session
 * timeout is removed and the group rebalances. Because every commit and heartbeat carries the
 * generation, a member of an old generation cannot commit, so no partition is owned by two
 * members of one generation.
 *
 * Two additions to Kafka's rules, for members' connections and fetches:
 * - A member whose connection closes (the one it last joined, synced or heartbeated on) is
 *   removed at once, as if it had left: a killed process's sockets close with it, so its group
 *   goes on without waiting out its session and its replacement joins at once. (A member cut
 *   off without a close — a hung process, a lost network — still lapses with its session.) A
 *   live client that lost its connection is told UNKNOWN_MEMBER_ID on its next heartbeat and
 *   rejoins.
 * - When a group starts to rebalance, 'rejoinNeeded' names the client ids of the members that
 *   must rejoin, so the broker can end their long-polled fetches, and until they have rejoined
 *   `awaitingRejoin` says so (their fetches then wait briefly). kafkajs learns of a rebalance
 *   only from the heartbeat it sends between fetches, and a fetch may wait 10 s. Fetches carry
 *   no group and kafkajs sends them on a connection of their own, so the client id is what ties
 *   them to a member: Postline's consumers each have their own (shared/kafka/client.ts); clients
 *   that share one across groups only have a fetch ended early now and then.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { SetMap } from '../set-map.js';

export type GroupState = 'Empty' | 'PreparingRebalance' | 'CompletingRebalance' | 'Stable' | 'Dead';

export type GroupErrorName =
  | 'NONE'
  | 'UNKNOWN_MEMBER_ID'
  | 'ILLEGAL_GENERATION'
  | 'REBALANCE_IN_PROGRESS'
  | 'INCONSISTENT_GROUP_PROTOCOL'
  | 'INVALID_SESSION_TIMEOUT'
  | 'INVALID_GROUP_ID'
  | 'MEMBER_ID_REQUIRED'
  | 'COORDINATOR_NOT_AVAILABLE';

export interface Protocol {
  name: string;
  metadata: Buffer;
}

export interface JoinRequest {
  groupId: string;
  memberId: string;
  groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  /** The connection the request came on (see the module comment); unset for callers without one. */
  connectionId?: number;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  protocolType: string;
  protocols: Protocol[];
  /**
   * JoinGroup v4+: a member without an id is given one and asked to join again with it
   * (MEMBER_ID_REQUIRED), so a retried first join cannot leave a ghost member behind.
   */
  requireMemberId?: boolean;
}

export interface JoinResult {
  error: GroupErrorName;
  generationId: number;
  protocolName: string;
  leader: string;
  memberId: string;
  members: Array<{ memberId: string; groupInstanceId: string | null; metadata: Buffer }>;
}

export interface SyncResult {
  error: GroupErrorName;
  assignment: Buffer;
}

interface Member {
  memberId: string;
  groupId: string;
  /** The connection of the member's last JoinGroup, SyncGroup or Heartbeat. */
  connectionId?: number;
  groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  protocols: Protocol[];
  assignment: Buffer;
  expiresAt: number;
  /** JoinGroup requests parked until the join phase completes (a retry may overlap the first). */
  pendingJoins: Array<(r: JoinResult) => void>;
  /** SyncGroup requests waiting for the leader's assignment (a retry may overlap the first). */
  pendingSyncs: Array<(r: SyncResult) => void>;
}

export class Group {
  state: GroupState = 'Empty';
  generation = 0;
  protocolType = '';
  protocol = '';
  leader = '';
  members = new Map<string, Member>();
  rebalanceTimer?: NodeJS.Timeout;
  /** During the initial rebalance delay the join phase may not complete before this time. */
  joinNotBefore = 0;
  /** Member ids handed out with MEMBER_ID_REQUIRED, not yet used, and when they lapse. */
  pendingMemberIds = new Map<string, number>();
  /** When the group last became empty (for `offsets.retention.minutes`). */
  emptySince = Date.now();

  constructor(readonly id: string) {}

  describeMembers(): Array<{ memberId: string; clientId: string; clientHost: string; memberMetadata: Buffer; memberAssignment: Buffer }> {
    return [...this.members.values()].map((m) => ({
      memberId: m.memberId,
      clientId: m.clientId,
      clientHost: m.clientHost,
      memberMetadata: m.protocols.find((p) => p.name === this.protocol)?.metadata ?? Buffer.alloc(0),
      memberAssignment: m.assignment,
    }));
  }
}

export interface CoordinatorOptions {
  minSessionTimeoutMs: number;
  maxSessionTimeoutMs: number;
  /** Wait this long after the first member joins an empty group before completing the join. */
  initialRebalanceDelayMs: number;
}

const EMPTY = Buffer.alloc(0);

/**
 * Emits 'rebalance' (groupId, generation, memberCount), 'memberExpired' (groupId, memberId) and
 * 'memberDisconnected' (groupId, memberId) for logs and metrics, and 'rejoinNeeded'
 * (clientId) for the broker to end that client's waiting fetches.
 */
export class GroupCoordinator extends EventEmitter {
  readonly groups = new Map<string, Group>();
  /** The members bound to each connection, and the members of each client id (see the module comment). */
  private readonly byConnection = new SetMap<number, Member>();
  private readonly byClient = new SetMap<string, Member>();
  /**
   * One timer at the earliest time a session or a pending member id can lapse, not a sweep
   * every 100 ms: an idle broker with ~35 groups woke 10 times a second to find nothing due.
   * Heartbeats only move lapses later, so the timer is re-armed when it fires (to the new
   * earliest) and moved earlier only when a join sets an earlier lapse.
   */
  private sweeper?: NodeJS.Timeout;
  private sweepAt = Infinity;
  private closed = false;

  constructor(private readonly opts: CoordinatorOptions) {
    super();
  }

  /** Makes sure a sweep runs by `at`. */
  private sweepBy(at: number): void {
    if (this.closed || at >= this.sweepAt) return;
    clearTimeout(this.sweeper);
    this.sweepAt = at;
    this.sweeper = setTimeout(() => {
      this.sweeper = undefined;
      this.sweepAt = Infinity;
      this.expireSessions();
    }, Math.max(0, at - Date.now()));
    this.sweeper.unref();
  }

  group(id: string): Group | undefined {
    return this.groups.get(id);
  }

  /** Registers a group known only from stored offsets (after a restart), last active at `since`. */
  restore(id: string, protocolType: string, generation: number, since = Date.now()): void {
    if (this.groups.has(id)) return;
    const g = new Group(id);
    g.protocolType = protocolType;
    g.generation = generation;
    g.emptySince = since;
    this.groups.set(id, g);
  }

  join(req: JoinRequest): Promise<JoinResult> {
    const fail = (error: GroupErrorName): Promise<JoinResult> =>
      Promise.resolve({ error, generationId: -1, protocolName: '', leader: '', memberId: req.memberId, members: [] });
    if (!req.groupId) return fail('INVALID_GROUP_ID');
    if (req.sessionTimeoutMs < this.opts.minSessionTimeoutMs || req.sessionTimeoutMs > this.opts.maxSessionTimeoutMs) {
      return fail('INVALID_SESSION_TIMEOUT');
    }
    let g = this.groups.get(req.groupId);
    if (!g) {
      g = new Group(req.groupId);
      this.groups.set(req.groupId, g);
    }
    if (g.state === 'Dead') return fail('COORDINATOR_NOT_AVAILABLE');
    const wasEmpty = g.members.size === 0;
    if (!wasEmpty && (req.protocolType !== g.protocolType || !this.sharesProtocol(g, req.protocols))) {
      return fail('INCONSISTENT_GROUP_PROTOCOL');
    }
    if (req.protocols.length === 0) return fail('INCONSISTENT_GROUP_PROTOCOL');
    let member = req.memberId ? g.members.get(req.memberId) : undefined;
    const reserved = !member && g.pendingMemberIds.delete(req.memberId);
    if (req.memberId && !member && !reserved) return fail('UNKNOWN_MEMBER_ID');
    if (!req.memberId && req.requireMemberId) {
      const memberId = `${req.clientId || 'member'}-${randomUUID()}`;
      g.pendingMemberIds.set(memberId, Date.now() + req.sessionTimeoutMs);
      this.sweepBy(Date.now() + req.sessionTimeoutMs);
      return Promise.resolve({ error: 'MEMBER_ID_REQUIRED', generationId: -1, protocolName: '', leader: '', memberId, members: [] });
    }
    if (!member) {
      member = {
        memberId: req.memberId || `${req.clientId || 'member'}-${randomUUID()}`,
        groupId: g.id,
        groupInstanceId: req.groupInstanceId,
        clientId: req.clientId,
        clientHost: req.clientHost,
        sessionTimeoutMs: req.sessionTimeoutMs,
        rebalanceTimeoutMs: req.rebalanceTimeoutMs,
        protocols: req.protocols,
        assignment: EMPTY,
        expiresAt: 0,
        pendingJoins: [],
        pendingSyncs: [],
      };
      g.members.set(member.memberId, member);
      this.byClient.add(member.clientId, member);
    }
    if (wasEmpty) g.protocolType = req.protocolType;
    this.bind(member, req.connectionId);
    member.protocols = req.protocols;
    member.sessionTimeoutMs = req.sessionTimeoutMs;
    member.rebalanceTimeoutMs = req.rebalanceTimeoutMs > 0 ? req.rebalanceTimeoutMs : req.sessionTimeoutMs;
    member.expiresAt = Date.now() + member.sessionTimeoutMs;
    this.sweepBy(member.expiresAt);
    // A retried JoinGroup while the first is still parked (the client timed out, or resent on
    // a new connection) waits with it; both get the same answer, so neither a response queue
    // stalls nor the member is told it is unknown and rejoins as a ghost.
    const m = member;
    const result = new Promise<JoinResult>((resolve) => {
      m.pendingJoins.push(resolve);
    });
    if (g.state !== 'PreparingRebalance') this.prepareRebalance(g, wasEmpty ? this.opts.initialRebalanceDelayMs : undefined);
    else this.tryCompleteJoin(g);
    return result;
  }

  private sharesProtocol(g: Group, protocols: Protocol[]): boolean {
    const names = new Set(protocols.map((p) => p.name));
    for (const m of g.members.values()) if (!m.protocols.some((p) => names.has(p.name))) return false;
    return true;
  }

  private prepareRebalance(g: Group, delayMs?: number): void {
    g.state = 'PreparingRebalance';
    // Members waiting for their assignment of the old generation must rejoin.
    for (const m of g.members.values()) {
      for (const reply of m.pendingSyncs.splice(0)) reply({ error: 'REBALANCE_IN_PROGRESS', assignment: EMPTY });
      if (m.pendingJoins.length === 0) this.emit('rejoinNeeded', m.clientId);
    }
    clearTimeout(g.rebalanceTimer);
    const timeout = delayMs ?? Math.max(...[...g.members.values()].map((m) => m.rebalanceTimeoutMs), 0);
    g.joinNotBefore = delayMs ? Date.now() + delayMs : 0;
    g.rebalanceTimer = setTimeout(() => this.completeJoin(g, true), timeout);
    this.tryCompleteJoin(g);
  }

  private tryCompleteJoin(g: Group): void {
    if (g.state !== 'PreparingRebalance') return;
    // Members joining an empty group during the initial delay all wait for it to pass.
    if (Date.now() < g.joinNotBefore) return;
    for (const m of g.members.values()) if (m.pendingJoins.length === 0) return;
    this.completeJoin(g, false);
  }

  /** Ends the join phase: drops members that did not rejoin (on timeout) and starts a generation. */
  private completeJoin(g: Group, timedOut: boolean): void {
    if (g.state !== 'PreparingRebalance') return;
    clearTimeout(g.rebalanceTimer);
    if (timedOut) {
      for (const [id, m] of g.members) {
        if (m.pendingJoins.length > 0) continue;
        g.members.delete(id);
        this.forget(m);
      }
    }
    g.generation++;
    if (g.members.size === 0) {
      g.state = 'Empty';
      g.emptySince = Date.now();
      g.protocol = '';
      g.leader = '';
      this.emit('rebalance', g.id, g.generation, 0);
      return;
    }
    g.protocol = this.selectProtocol(g);
    if (!g.members.has(g.leader)) g.leader = g.members.keys().next().value as string;
    g.state = 'CompletingRebalance';
    const all = [...g.members.values()].map((m) => ({
      memberId: m.memberId,
      groupInstanceId: m.groupInstanceId,
      metadata: m.protocols.find((p) => p.name === g.protocol)?.metadata ?? EMPTY,
    }));
    const now = Date.now();
    for (const m of g.members.values()) {
      const replies = m.pendingJoins.splice(0);
      m.assignment = EMPTY;
      m.expiresAt = now + m.sessionTimeoutMs;
      this.sweepBy(m.expiresAt);
      const r: JoinResult = {
        error: 'NONE',
        generationId: g.generation,
        protocolName: g.protocol,
        leader: g.leader,
        memberId: m.memberId,
        members: m.memberId === g.leader ? all : [],
      };
      for (const reply of replies) reply(r);
    }
    this.emit('rebalance', g.id, g.generation, g.members.size);
  }

  /** The protocol every member supports with the most first-choice votes (Kafka's rule). */
  private selectProtocol(g: Group): string {
    const members = [...g.members.values()];
    const candidates = members[0].protocols.map((p) => p.name).filter((n) => members.every((m) => m.protocols.some((p) => p.name === n)));
    const votes = new Map<string, number>();
    for (const m of members) {
      const pick = m.protocols.find((p) => candidates.includes(p.name))?.name;
      if (pick) votes.set(pick, (votes.get(pick) ?? 0) + 1);
    }
    return [...votes].sort((a, b) => b[1] - a[1])[0]?.[0] ?? candidates[0];
  }

  private check(groupId: string, memberId: string, generation: number): { g?: Group; m?: Member; error: GroupErrorName } {
    const g = this.groups.get(groupId);
    const m = g?.members.get(memberId);
    if (!g || !m) return { error: 'UNKNOWN_MEMBER_ID' };
    if (generation !== g.generation) return { g, m, error: 'ILLEGAL_GENERATION' };
    return { g, m, error: 'NONE' };
  }

  sync(groupId: string, memberId: string, generation: number, assignments: Array<{ memberId: string; assignment: Buffer }>, connectionId?: number): Promise<SyncResult> {
    const { g, m, error } = this.check(groupId, memberId, generation);
    if (error !== 'NONE' || !g || !m) return Promise.resolve({ error, assignment: EMPTY });
    this.bind(m, connectionId);
    m.expiresAt = Date.now() + m.sessionTimeoutMs;
    this.sweepBy(m.expiresAt);
    if (g.state === 'PreparingRebalance') return Promise.resolve({ error: 'REBALANCE_IN_PROGRESS', assignment: EMPTY });
    if (g.state === 'Stable') return Promise.resolve({ error: 'NONE', assignment: m.assignment });
    const result = new Promise<SyncResult>((resolve) => {
      m.pendingSyncs.push(resolve);
    });
    if (memberId === g.leader) {
      const byMember = new Map(assignments.map((a) => [a.memberId, a.assignment]));
      for (const member of g.members.values()) member.assignment = byMember.get(member.memberId) ?? EMPTY;
      g.state = 'Stable';
      for (const member of g.members.values()) {
        for (const reply of member.pendingSyncs.splice(0)) reply({ error: 'NONE', assignment: member.assignment });
      }
    }
    return result;
  }

  heartbeat(groupId: string, memberId: string, generation: number, connectionId?: number): GroupErrorName {
    const { g, m, error } = this.check(groupId, memberId, generation);
    if (error !== 'NONE' || !g || !m) {
      if (m && error === 'ILLEGAL_GENERATION' && g?.state === 'PreparingRebalance') return 'REBALANCE_IN_PROGRESS';
      return error;
    }
    this.bind(m, connectionId);
    m.expiresAt = Date.now() + m.sessionTimeoutMs;
    this.sweepBy(m.expiresAt);
    return g.state === 'PreparingRebalance' ? 'REBALANCE_IN_PROGRESS' : 'NONE';
  }

  leave(groupId: string, memberIds: string[]): GroupErrorName[] {
    const g = this.groups.get(groupId);
    const out = memberIds.map((id): GroupErrorName => {
      const m = g?.members.get(id);
      if (!g || !m) return 'UNKNOWN_MEMBER_ID';
      this.removeMember(g, m);
      return 'NONE';
    });
    return out;
  }

  /** Binds `m` to the connection its latest request came on. */
  private bind(m: Member, connectionId: number | undefined): void {
    if (connectionId === undefined || m.connectionId === connectionId) return;
    this.unbind(m);
    m.connectionId = connectionId;
    this.byConnection.add(connectionId, m);
  }

  /** Drops every index entry of a member leaving its group. */
  private forget(m: Member): void {
    this.unbind(m);
    this.byClient.delete(m.clientId, m);
  }

  private unbind(m: Member): void {
    if (m.connectionId === undefined) return;
    this.byConnection.delete(m.connectionId, m);
    m.connectionId = undefined;
  }

  /** Removes the members bound to a closed connection (see the module comment). */
  connectionClosed(connectionId: number): void {
    for (const m of this.byConnection.values(connectionId)) {
      const g = this.groups.get(m.groupId);
      if (g?.members.get(m.memberId) !== m) {
        this.forget(m);
        continue;
      }
      this.emit('memberDisconnected', g.id, m.memberId);
      this.removeMember(g, m);
    }
  }

  /**
   * Whether a member with this client id has a rebalance to rejoin that it has not yet rejoined:
   * its client learns of it only from a heartbeat, which kafkajs sends between fetches.
   */
  awaitingRejoin(clientId: string): boolean {
    return this.byClient.values(clientId).some((m) => m.pendingJoins.length === 0 && this.groups.get(m.groupId)?.state === 'PreparingRebalance');
  }

  private removeMember(g: Group, m: Member): void {
    g.members.delete(m.memberId);
    this.forget(m);
    for (const reply of m.pendingJoins.splice(0)) reply({ error: 'UNKNOWN_MEMBER_ID', generationId: -1, protocolName: '', leader: '', memberId: m.memberId, members: [] });
    for (const reply of m.pendingSyncs.splice(0)) reply({ error: 'UNKNOWN_MEMBER_ID', assignment: EMPTY });
    if (g.state === 'Stable' || g.state === 'CompletingRebalance') this.prepareRebalance(g);
    else if (g.state === 'PreparingRebalance') {
      if (g.members.size === 0) this.completeJoin(g, false);
      else this.tryCompleteJoin(g);
    }
  }

  /**
   * Validates a commit against the group. Commits with generation -1 and no member id are
   * "simple" commits (admin tools), allowed only while the group has no members.
   */
  checkCommit(groupId: string, memberId: string, generation: number): GroupErrorName {
    const g = this.groups.get(groupId);
    if (generation < 0 && !memberId) return g && g.members.size > 0 ? 'UNKNOWN_MEMBER_ID' : 'NONE';
    const { g: grp, m, error } = this.check(groupId, memberId, generation);
    if (error !== 'NONE' || !grp || !m) return error;
    if (grp.state === 'CompletingRebalance') return 'REBALANCE_IN_PROGRESS';
    m.expiresAt = Date.now() + m.sessionTimeoutMs;
    this.sweepBy(m.expiresAt);
    return 'NONE';
  }

  /** Creates the group record for a simple commit so it is listed and described. */
  ensureGroup(groupId: string, protocolType = 'consumer'): Group {
    let g = this.groups.get(groupId);
    if (!g) {
      g = new Group(groupId);
      g.protocolType = protocolType;
      this.groups.set(groupId, g);
    }
    return g;
  }

  deleteGroup(groupId: string): 'NONE' | 'NON_EMPTY_GROUP' | 'GROUP_ID_NOT_FOUND' {
    const g = this.groups.get(groupId);
    if (!g) return 'GROUP_ID_NOT_FOUND';
    if (g.members.size > 0) return 'NON_EMPTY_GROUP';
    clearTimeout(g.rebalanceTimer);
    g.state = 'Dead';
    this.groups.delete(groupId);
    return 'NONE';
  }

  private expireSessions(now = Date.now()): void {
    let next = Infinity;
    for (const g of this.groups.values()) {
      for (const [id, lapsesAt] of g.pendingMemberIds) {
        if (lapsesAt <= now) g.pendingMemberIds.delete(id);
        else next = Math.min(next, lapsesAt);
      }
      for (const m of [...g.members.values()]) {
        // A member parked in JoinGroup is bounded by the rebalance timeout instead (its join
        // completing sets a new lapse, which arms the sweep).
        if (m.pendingJoins.length > 0) continue;
        if (m.expiresAt > now) {
          next = Math.min(next, m.expiresAt);
          continue;
        }
        this.emit('memberExpired', g.id, m.memberId);
        this.removeMember(g, m);
      }
    }
    if (next < Infinity) this.sweepBy(next);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.sweeper);
    for (const g of this.groups.values()) {
      clearTimeout(g.rebalanceTimer);
      for (const m of g.members.values()) {
        for (const reply of m.pendingJoins.splice(0)) reply({ error: 'COORDINATOR_NOT_AVAILABLE', generationId: -1, protocolName: '', leader: '', memberId: m.memberId, members: [] });
        for (const reply of m.pendingSyncs.splice(0)) reply({ error: 'COORDINATOR_NOT_AVAILABLE', assignment: EMPTY });
      }
    }
  }
}
