/**
 * The fleet of persistent SMTP connections to one destination host. A few warm connections are
 * opened at start; a request finding every connection busy opens another, up to the fleet's cap;
 * idle connections above the warm count are closed (QUIT) after a while. The host sets the
 * ceiling: when it refuses a connection or answers 421, the fleet's cap drops to the connections
 * it has for a cool-down. Requests queue by priority (critical first) and are admitted by
 * `fleet-admission`, so bulk can never take the connections critical mail needs.
 *
 * A circuit breaker gates new connections (`canConnect`, `connect`): while it is open the fleet
 * opens nothing, keeps using the connections it has, and — with none left — fails its waiters
 * at once with HostUnavailableError so they move to the next host of the route.
 *
 * Emits (for metrics and logs): 'opened' (conn), 'closed' (conn, reason, err?),
 * 'connect-failed' (err), 'ceiling' (cap, untilMs).
 */
import { EventEmitter } from 'node:events';
import type { Priority } from '../../shared/config.js';
import { TransientError } from '../../shared/errors.js';
import { FleetBusyError, HostUnavailableError } from './fleet-errors.js';
import { PRIORITY_ORDER, admit, afterAdmission, type AdmissionState, type Reserve } from './fleet-admission.js';
import { FleetConnection, type CloseReason, type ConnectionTimeouts } from './fleet-connection.js';
import { BreakerOpenError } from './host-breaker.js';
import type { SmtpTarget } from './route.js';
import type { SiteBudget } from './site-budget.js';

export { FleetBusyError, HostUnavailableError };

export interface FleetOptions {
  warm: number;
  max: number;
  reserve: Reserve;
  idleTimeoutMs: number;
  ceilingCooldownMs: number;
  acquireTimeoutMs: number;
  /** Shared connection budget of the (source address, site) this fleet's host belongs to. */
  budget?: SiteBudget;
  /** A connection that carried this many messages says QUIT instead of going idle (default: no limit). */
  maxMessagesPerConnection?: number;
  timeouts: ConnectionTimeouts;
  /** Opens a connection; a circuit breaker wraps this (default: a FleetConnection's open()). */
  connect?: (conn: FleetConnection) => Promise<void>;
  /** Whether a new connection may be attempted now (false while the host's breaker is open). */
  canConnect?: () => boolean;
  now?: () => number;
}

/** A connection lent to one message. Give it back exactly once. */
export interface Lease {
  connection: FleetConnection;
  /** The connection carried messages before this one. */
  reused: boolean;
  /** Back to the fleet; `reset`: RSET before its next message (after a refused transaction). */
  release(opts?: { reset?: boolean }): void;
  /** The connection is unusable: close it. `throttled` when the host answered 421. */
  discard(reason: CloseReason, opts?: { throttled?: boolean }): void;
}

interface Waiter {
  priority: Priority;
  resolve: (lease: Lease) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export interface FleetStats {
  host: string;
  /** Site and source address of an mx route's fleet. */
  site?: string;
  source?: string;
  size: number;
  busy: number;
  idle: number;
  opening: number;
  waiting: number;
  cap: number;
}

export class SmtpFleet extends EventEmitter {
  private readonly live = new Set<FleetConnection>();
  private readonly opening = new Set<FleetConnection>();
  /** Idle connections, most recently used last: reuse from the end, let the start idle out. */
  private idleStack: FleetConnection[] = [];
  private readonly idleTimers = new Map<FleetConnection, NodeJS.Timeout>();
  /** Idle connections saying QUIT (still live until the server closes them). */
  private readonly retiring = new Set<FleetConnection>();
  private readonly waiters: Record<Priority, Waiter[]> = { critical: [], transactional: [], bulk: [] };
  private readonly busy: Record<Priority, number> = { critical: 0, transactional: 0, bulk: 0 };
  private ceiling?: { cap: number; until: number };
  private nextId = 1;
  private closing = false;
  private readonly now: () => number;

  constructor(
    readonly target: SmtpTarget,
    private readonly opts: FleetOptions,
  ) {
    super();
    this.now = opts.now ?? Date.now;
    opts.budget?.join(this);
  }

  /** Connections open or being opened (what a site budget counts). */
  inPlay(): number {
    return this.live.size + this.opening.size;
  }

  /** Connections in play that are not saying QUIT already. */
  staying(): number {
    return this.live.size - this.retiring.size + this.opening.size;
  }

  /** Serves waiting messages again (a site budget freed a connection). */
  poke(): void {
    if (this.waitingCount() > 0) this.pump();
  }

  /** Says QUIT on the least recently used idle connection, for another host of the site; false when none is idle. */
  retireIdle(): boolean {
    const conn = this.idleStack.shift();
    if (!conn) return false;
    clearTimeout(this.idleTimers.get(conn));
    this.idleTimers.delete(conn);
    this.retiring.add(conn);
    void conn.quit('idle');
    return true;
  }

  private waitingCount(): number {
    return PRIORITY_ORDER.reduce((n, p) => n + this.waiters[p].length, 0);
  }

  /** The most connections allowed now: the configured maximum, or the host's observed ceiling. */
  cap(): number {
    if (this.ceiling && this.now() < this.ceiling.until) return Math.max(1, Math.min(this.opts.max, this.ceiling.cap));
    this.ceiling = undefined;
    return this.opts.max;
  }

  /** Opens the warm connections (failures are reported as 'connect-failed', not thrown). */
  warm(): void {
    const missing = Math.min(this.opts.warm, this.cap()) - this.live.size - this.opening.size;
    for (let i = 0; i < missing; i++) this.openConnection();
  }

  /** True when a message could be served: a connection is open, or one may be opened. */
  available(): boolean {
    return this.live.size > 0 || this.canConnect();
  }

  /**
   * Opens one connection in the background when the fleet has none (the half-open probe of
   * its breaker: no message waits on it). Returns whether it started one.
   */
  probe(): boolean {
    if (this.closing || this.live.size + this.opening.size > 0 || !this.canConnect()) return false;
    this.openConnection();
    return true;
  }

  /** Resolves with a connection for one message of priority `p`. */
  acquire(p: Priority): Promise<Lease> {
    if (this.closing) return Promise.reject(new TransientError('FLEET_CLOSED', `fleet for ${this.target.key} is closing`));
    if (!this.available()) return Promise.reject(new HostUnavailableError(this.target.key, new BreakerOpenError(this.target.key)));
    return new Promise<Lease>((resolve, reject) => {
      const waiter: Waiter = {
        priority: p,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.removeWaiter(waiter);
          reject(new FleetBusyError(this.target.key, this.opts.acquireTimeoutMs));
        }, this.opts.acquireTimeoutMs),
      };
      this.waiters[p].push(waiter);
      this.pump();
    });
  }

  stats(): FleetStats {
    const busy = this.busy.critical + this.busy.transactional + this.busy.bulk;
    const waiting = PRIORITY_ORDER.reduce((n, p) => n + this.waiters[p].length, 0);
    const where = this.target.shaping ? { site: this.target.shaping.site, source: this.target.shaping.source } : {};
    return { host: this.target.key, ...where, size: this.live.size, busy, idle: this.idleStack.length, opening: this.opening.size, waiting, cap: this.cap() };
  }

  /** Fails waiting requests, says QUIT on every connection (busy ones once released). */
  async close(): Promise<void> {
    this.closing = true;
    this.failWaiters(new TransientError('FLEET_CLOSED', `fleet for ${this.target.key} closed`));
    const idle = this.idleStack.splice(0);
    for (const t of this.idleTimers.values()) clearTimeout(t);
    this.idleTimers.clear();
    // Nothing waits for connections still being opened any more.
    for (const c of this.opening) c.destroy('shutdown');
    await Promise.all(idle.map((c) => c.quit('shutdown')));
    // Busy connections quit when their message is done (bounded by the socket timeout).
    const remaining = [...this.live].filter((c) => !c.closed);
    await Promise.all(remaining.map((c) => new Promise<void>((resolve) => (c.closed ? resolve() : c.once('closed', () => resolve())))));
  }

  private canConnect(): boolean {
    return this.opts.canConnect?.() ?? true;
  }

  /** Hands idle connections to waiters by priority and opens connections where admitted. */
  private pump(): void {
    if (this.closing) return;
    const canOpen = this.canConnect();
    if (!canOpen && this.live.size + this.opening.size === 0) {
      // Breaker open and nothing left to serve the waiters: they go to the next host now.
      this.failWaiters(new HostUnavailableError(this.target.key, new BreakerOpenError(this.target.key)));
      return;
    }
    const inPlay = this.live.size + this.opening.size;
    // The site's budget bounds this host's fleet too: what is open here plus what the site has left.
    const budgetCap = this.opts.budget ? inPlay + this.opts.budget.free() : Number.POSITIVE_INFINITY;
    let state: AdmissionState = {
      cap: Math.min(this.cap(), budgetCap),
      reserve: this.opts.reserve,
      busy: { ...this.busy },
      idle: this.idleStack.length,
      opening: this.opening.size,
      total: this.live.size + this.opening.size,
      canOpen,
    };
    let starved = false;
    for (const p of PRIORITY_ORDER) {
      for (const waiter of [...this.waiters[p]]) {
        const decision = admit(state, p);
        if (decision === 'wait') {
          starved ||= state.total === 0;
          break; // FIFO within a priority: later ones would wait too
        }
        state = afterAdmission(state, p, decision);
        if (decision === 'use-idle') this.lend(this.idleStack.pop()!, waiter);
        else if (decision === 'open') this.openConnection();
      }
    }
    // Messages wait with nothing of this host's in play while the site's budget is spent by other
    // hosts' connections: retire an idle one of those (its close wakes this fleet).
    if (starved && this.opts.budget && this.opts.budget.free() === 0) this.opts.budget.makeRoom(this);
  }

  private lend(conn: FleetConnection, waiter: Waiter): void {
    this.removeWaiter(waiter);
    clearTimeout(this.idleTimers.get(conn));
    this.idleTimers.delete(conn);
    const p = waiter.priority;
    this.busy[p]++;
    let returned = false;
    const giveBack = (): boolean => {
      if (returned) return false;
      returned = true;
      this.busy[p]--;
      return true;
    };
    waiter.resolve({
      connection: conn,
      reused: conn.messages > 0,
      release: (o) => {
        if (!giveBack()) return;
        // RSET goes out with the connection's next message, so it is free again at once.
        if (o?.reset) conn.needsReset = true;
        this.makeIdle(conn);
      },
      discard: (reason, o) => {
        if (!giveBack()) return;
        if (o?.throttled) this.lowerCeiling(this.live.size);
        conn.destroy(reason);
        this.pump();
      },
    });
  }

  private makeIdle(conn: FleetConnection): void {
    if (conn.closed) return this.pump();
    if (this.closing) {
      void conn.quit('shutdown');
      return;
    }
    if (conn.messages >= (this.opts.budget?.maxMessagesPerConnection ?? this.opts.maxMessagesPerConnection ?? Number.POSITIVE_INFINITY) || this.opts.budget?.over()) {
      // Its share of messages is done (the destination's limit), or the site's connection limit
      // was lowered below what is open: a fresh connection takes over when one may.
      this.retiring.add(conn);
      void conn.quit('idle');
      return this.pump();
    }
    conn.idle();
    this.idleStack.push(conn);
    this.idleTimers.set(
      conn,
      setTimeout(() => this.onIdleTimeout(conn), this.opts.idleTimeoutMs),
    );
    this.pump();
    // Still idle after this host's own waiters: other hosts of the site may be waiting for room.
    if (!conn.closed && this.idleStack.includes(conn)) this.opts.budget?.idled(this);
  }

  private onIdleTimeout(conn: FleetConnection): void {
    this.idleTimers.delete(conn);
    // Warm connections stay; the rest go. (A warm one closed by the server is not replaced until needed.)
    if (this.live.size - this.retiring.size <= this.opts.warm) return;
    const i = this.idleStack.indexOf(conn);
    if (i < 0) return;
    this.idleStack.splice(i, 1);
    this.retiring.add(conn);
    void conn.quit('idle');
  }

  private openConnection(): void {
    const conn = new FleetConnection(this.nextId++, this.target, this.opts.timeouts);
    this.opening.add(conn);
    conn.once('closed', (reason: CloseReason, err?: Error) => this.onClosed(conn, reason, err));
    const connect = this.opts.connect ?? ((c: FleetConnection) => c.open());
    connect(conn).then(
      () => {
        this.opening.delete(conn);
        if (conn.closed) return this.pump();
        this.live.add(conn);
        this.emit('opened', conn);
        this.makeIdle(conn);
      },
      (err: Error) => {
        this.opening.delete(conn);
        conn.destroy('connect-failed');
        if (this.closing) return;
        // Not attempted (the breaker said no): says nothing about the host's connection limit.
        if (err instanceof BreakerOpenError) return this.pump();
        this.emit('connect-failed', err);
        this.onConnectFailed(err);
      },
    );
  }

  private onConnectFailed(err: Error): void {
    const inPlay = this.live.size + this.opening.size;
    if (inPlay > 0) {
      // The host took some connections but not this one: it will not take more than those
      // (the ones still opening may yet fail and lower this further).
      this.lowerCeiling(inPlay);
    } else {
      // Nothing open and nothing on the way: the host is unreachable, which says nothing about
      // its connection limit. Waiters go elsewhere (fallback host or the retry path) instead of
      // sitting out their timeout.
      this.ceiling = undefined;
      this.failWaiters(new HostUnavailableError(this.target.key, err));
    }
    this.pump();
  }

  private failWaiters(err: Error): void {
    for (const p of PRIORITY_ORDER) {
      for (const w of this.waiters[p].splice(0)) {
        clearTimeout(w.timer);
        w.reject(err);
      }
    }
  }

  private lowerCeiling(cap: number): void {
    cap = Math.max(1, cap);
    if (this.ceiling && this.ceiling.cap <= cap && this.now() < this.ceiling.until) return;
    const until = this.now() + this.opts.ceilingCooldownMs;
    this.ceiling = { cap, until };
    this.emit('ceiling', cap, until);
  }

  private onClosed(conn: FleetConnection, reason: CloseReason, err?: Error): void {
    const wasLive = this.live.delete(conn);
    // A connection that failed to open is handled (and the fleet pumped) by openConnection.
    if (!wasLive) return;
    this.retiring.delete(conn);
    clearTimeout(this.idleTimers.get(conn));
    this.idleTimers.delete(conn);
    const i = this.idleStack.indexOf(conn);
    if (i >= 0) this.idleStack.splice(i, 1);
    this.emit('closed', conn, reason, err);
    this.pump();
  }

  private removeWaiter(waiter: Waiter): void {
    clearTimeout(waiter.timer);
    const list = this.waiters[waiter.priority];
    const i = list.indexOf(waiter);
    if (i >= 0) list.splice(i, 1);
  }
}
