/**
 * A second renderer for `postline start` while there is a backlog to render. The co-hosted
 * stages process renders, dispatches and serves the API on one event loop; on a 2-core machine
 * that loop is the limit of a large batch (measured: the renderer alone in a process of its own
 * lifts `npm start` from ~680 to ~1,000 messages/s, for ~135 MB more at rest and ~300 MB more
 * under load). So the launcher starts that process only when the stages' renderer falls behind,
 * and it goes when the backlog has been gone for a while: idle `npm start` stays as lean as before.
 *
 * - `BacklogWatch` (in the stages process, `postline stages … --signal-render-backlog <records>`)
 *   sums the records its renderer has not started over its partitions, as each batch arrives, and says so
 *   in a log line the launcher acts on (`RENDER_BACKLOG_MSG`). With the ingest in the same process
 *   it also counts the messages accepted there and not yet rendered: a batch posted to the API is a
 *   backlog the moment it is accepted, while the renderer's next batch (and with it the consumer's
 *   view of the backlog) comes only after the one it is rendering, on an event loop busy accepting.
 * - `IdleExit` (in the helper, `postline stages renderer --exit-when-idle <ms>`) ends the helper
 *   once it has had no backlog (IDLE_BACKLOG records waiting) for that long — a trickle of
 *   messages does not keep it; it leaves its consumer groups cleanly, so the stages' renderer
 *   takes its partitions back at once.
 *
 * Both renderers are members of the same consumer groups, as replicas are in Kubernetes:
 * partitions are split between them, offsets committed after the side effect, at-least-once.
 */
import type { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { SECOND_RENDERER_NODE_FLAGS } from '../../shared/node-flags.js';
import type { ChildSpec, Phase, Supervisor } from './supervisor.js';

/** The stages process's log line that asks the launcher for a helper renderer. */
export const RENDER_BACKLOG_MSG = 'render backlog';

export interface BacklogWatchOptions {
  /** Records waiting, summed over the renderer's partitions, that call for a helper. */
  threshold: number;
  /** Called when the backlog reaches the threshold; again at most once per `quietMs` (or at once after a rebalance). */
  signal(backlog: number): void;
  /** A partition's last report counts this long (default 10 s): partitions move at a rebalance. */
  freshMs?: number;
  /** Least time between two signals (default 10 s). */
  quietMs?: number;
  now?: () => number;
}

/** Watches a stage consumer's 'backlog' (topic, partition, records not started) and 'rebalanced' events. */
export class BacklogWatch {
  private readonly reports = new Map<string, { records: number; at: number }>();
  /** Partitions this renderer holds, by consumer group, as each 'rebalanced' event tells. */
  private readonly held = new Map<string, number>();
  /** Messages the co-hosted ingest accepted since the last rebalance, less the records rendered since. */
  private intake = 0;
  private lastSignal = -Infinity;
  private readonly now: () => number;

  constructor(private readonly o: BacklogWatchOptions) {
    this.now = o.now ?? Date.now;
  }

  /** Follows `events` (a StageConsumer, or an emitter fed by several). */
  watch(events: EventEmitter): this {
    events.on('backlog', (topic: string, partition: number, records: number) => this.report(topic, partition, records));
    // Partitions may have moved: only reports made after the rebalance count, and a backlog
    // then is news (the second renderer may just have left): it is signalled at once.
    events.on('rebalanced', (group?: string, partitions?: number) => {
      this.reports.clear();
      this.intake = 0;
      this.lastSignal = -Infinity;
      if (group !== undefined && partitions !== undefined) this.held.set(group, partitions);
    });
    // Every record the renderer finishes is 'processed' once (a dead-lettered one too); one that
    // 'failed' is fetched again and counted when it is.
    events.on('processed', () => void (this.intake > 0 && this.intake--));
    return this;
  }

  /**
   * Follows the co-hosted ingest's 'accepted' events (one per message). Counted only while this
   * renderer holds partitions: while the second renderer has them all, what is accepted is its work.
   */
  watchIntake(intake: EventEmitter): this {
    intake.on('accepted', (_priority: string, scheduled?: boolean) => {
      // A scheduled message waits for the scheduler, not for the renderer.
      if (scheduled || !this.holdsPartitions()) return;
      this.intake++;
      if (this.intake >= this.o.threshold) this.check();
    });
    return this;
  }

  /** True until a group reports its assignment, then while any group gives this renderer a partition. */
  private holdsPartitions(): boolean {
    if (this.held.size === 0) return true;
    for (const n of this.held.values()) if (n > 0) return true;
    return false;
  }

  /** The records waiting: the sum over the partitions reported within `freshMs`, or the intake not yet rendered when larger. */
  backlog(): number {
    const since = this.now() - (this.o.freshMs ?? 10_000);
    let sum = 0;
    for (const [key, r] of this.reports) {
      if (r.at < since) this.reports.delete(key);
      else sum += r.records;
    }
    return Math.max(sum, this.intake);
  }

  report(topic: string, partition: number, records: number): void {
    this.reports.set(`${topic}\u0000${partition}`, { records, at: this.now() });
    this.check();
  }

  private check(): void {
    const now = this.now();
    if (now - this.lastSignal < (this.o.quietMs ?? 10_000)) return;
    const backlog = this.backlog();
    if (backlog < this.o.threshold) return;
    this.lastSignal = now;
    this.o.signal(backlog);
  }
}

/** Records waiting at a batch's arrival below which the second renderer counts as idle. */
export const IDLE_BACKLOG = 50;

export interface IdleExitOptions {
  /** No batch arrived with `busyAt` or more records waiting for this long: `exit` is called (once). */
  idleMs: number;
  /** Default IDLE_BACKLOG: a trickle of messages does not keep the second renderer, only a backlog does. */
  busyAt?: number;
  exit(): void;
  now?: () => number;
}

/**
 * Calls `exit` once no batch has arrived with a backlog (`busyAt` records or more waiting) for
 * `idleMs`. Checked on a timer a quarter of that period (unref'd), not reset per batch.
 */
export class IdleExit {
  private last: number;
  private readonly timer: NodeJS.Timeout;
  private readonly now: () => number;
  private done = false;

  constructor(private readonly o: IdleExitOptions) {
    this.now = o.now ?? Date.now;
    this.last = this.now();
    this.timer = setInterval(() => this.check(), Math.max(10, Math.floor(o.idleMs / 4)));
    this.timer.unref();
  }

  /** Follows `events`' 'backlog' (a StageConsumer, or an emitter fed by several). */
  watch(events: EventEmitter): this {
    const busyAt = this.o.busyAt ?? IDLE_BACKLOG;
    events.on('backlog', (_topic: string, _partition: number, records: number) => {
      if (records >= busyAt) this.last = this.now();
    });
    return this;
  }

  check(): void {
    if (this.done || this.now() - this.last < this.o.idleMs) return;
    this.done = true;
    clearInterval(this.timer);
    this.o.exit();
  }

  stop(): void {
    this.done = true;
    clearInterval(this.timer);
  }
}

/** The supervisor's name for the second renderer. */
export const SECOND_RENDERER = 'second-renderer';

export interface SecondRendererOptions {
  /** The supervised process whose renderer signals its backlog (the co-hosted stages). */
  from: string;
  env: NodeJS.ProcessEnv;
  /** The user's `--node-flags` (after the second renderer's own, SECOND_RENDERER_NODE_FLAGS). */
  nodeFlags: readonly string[];
  idleMs: number;
  logger: Logger;
}

/** `postline stages renderer --exit-when-idle <ms> --preferred-renderer`, on demand. */
export function secondRendererSpec(o: Pick<SecondRendererOptions, 'env' | 'nodeFlags' | 'idleMs'>): ChildSpec {
  return {
    name: SECOND_RENDERER,
    args: ['stages', 'renderer', '--exit-when-idle', String(o.idleMs), '--preferred-renderer'],
    env: o.env,
    // V8's default young generation and a heap that grows at most 2× (SECOND_RENDERER_NODE_FLAGS):
    // it runs inside npm start's memory budget, and only while there is a backlog.
    nodeFlags: [...SECOND_RENDERER_NODE_FLAGS, ...o.nodeFlags],
    ready: (l) => l.msg === 'stages ready' || undefined,
    onDemand: true,
  };
}

/**
 * Starts the second renderer when `from` logs RENDER_BACKLOG_MSG and none runs (or is starting);
 * it stops itself once idle. One that cannot be kept running is given up on without stopping the
 * pipeline (the launcher's give-up handler lets SECOND_RENDERER go: the co-hosted renderer goes on alone).
 */
export function superviseSecondRenderer(supervisor: Supervisor, o: SecondRendererOptions): void {
  const idle = new Set<Phase | undefined>([undefined, 'stopped']);
  supervisor.on('line', (name: string, line: Record<string, unknown> | string) => {
    if (name !== o.from || typeof line !== 'object' || line.msg !== RENDER_BACKLOG_MSG || !idle.has(supervisor.phase(SECOND_RENDERER))) return;
    o.logger.info({ backlog: line.backlog }, `the renderer has ${String(line.backlog)} records waiting: starting a second renderer process`);
    supervisor.start(secondRendererSpec(o)).then(
      () => o.logger.info('second renderer ready'),
      (err: Error) => o.logger.warn({ err: err.message }, 'second renderer did not start'),
    );
  });
  supervisor.on('exit', (name: string, code: number | null, _signal: unknown, phase: Phase) => {
    if (name === SECOND_RENDERER && code === 0 && phase === 'ready') o.logger.info(`second renderer stopped: no backlog for ${Math.round(o.idleMs / 1000)} s`);
  });
}
