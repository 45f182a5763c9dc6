/**
 * Runs each process of the embedded default (the broker, analytics, the process hosting the
 * other stages) as its own child process (`postline <args>`): they use every core, and a crash
 * in one does not take the others down. A process that exits without being asked to — while starting,
 * while running, or while shutting down on its own — is restarted after a backoff that doubles
 * with each rapid failure (capped) and starts over once a run has been stable. One that keeps
 * failing, or whose configuration is wrong, is given up on loudly ('give-up'); the launcher
 * then stops everything. `stop` stops them in the order given (stages before the broker).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import readline from 'node:readline';
import { STAGE_NODE_FLAGS } from '../../shared/node-flags.js';
import { DEFAULT_RESTART_POLICY, decideRestart, describeExit, type RestartPolicy } from './restart-policy.js';

export interface ChildSpec {
  name: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  /**
   * Matches the output line that shows the child is ready; returns a value to keep (e.g. an
   * address), or true. Without it a child is ready once spawned.
   */
  ready?: (line: Record<string, unknown>) => string | boolean | undefined;
  /** Node flags for the child (default STAGE_NODE_FLAGS). */
  nodeFlags?: readonly string[];
  /**
   * Started on demand, and done when it exits 0 on its own (it is not restarted; `start` runs it
   * again). Any other exit is restarted like any child's.
   */
  onDemand?: boolean;
}

export type Phase = 'backoff' | 'starting' | 'ready' | 'stopping' | 'stopped' | 'given-up';

interface Managed {
  spec: ChildSpec;
  phase: Phase;
  child?: ChildProcess;
  /** Spawns so far (1 for the first start). */
  attempt: number;
  readyAt?: number;
  /** Rapid failures in a row (see RestartPolicy). */
  failures: number;
  timer?: NodeJS.Timeout;
  /** Settles on the first ready (or when the child is given up on / stopped before it). */
  first: { resolve(v: string): void; reject(e: Error): void; settled: boolean };
}

/** Why `start` rejected: the child was given up on or stopped before it was ever ready. */
export class SupervisedStartError extends Error {
  constructor(
    readonly child: string,
    message: string,
  ) {
    super(message);
    this.name = 'SupervisedStartError';
  }
}

/**
 * Events: 'line' (name, parsed JSON line or raw string), 'spawn' (name, pid, attempt),
 * 'ready' (name, attempt, msSinceSpawn), 'exit' (name, code, signal, phase),
 * 'restart' (name, failures, delayMs, how it exited, phase), 'give-up' (name, reason, failures),
 * 'error' is never emitted: child process and pipe errors become 'line's and exits.
 */
export class Supervisor extends EventEmitter {
  private readonly managed = new Map<string, Managed>();
  private stopped = false;

  constructor(
    private readonly entry: string,
    private readonly policy: RestartPolicy = DEFAULT_RESTART_POLICY,
  ) {
    super();
  }

  /** The phase of a supervised child (undefined if unknown). */
  phase(name: string): Phase | undefined {
    return this.managed.get(name)?.phase;
  }

  /** The pid of a child's current process, if it runs. */
  pid(name: string): number | undefined {
    const m = this.managed.get(name);
    return m?.child && m.child.exitCode === null && m.child.signalCode === null ? m.child.pid : undefined;
  }

  /**
   * Starts a child and keeps it running. Resolves with the `ready` value of its first ready
   * run (restarts before that are part of the wait); rejects with SupervisedStartError if it is
   * given up on or stopped before it is ever ready.
   */
  start(spec: ChildSpec): Promise<string> {
    if (this.stopped) return Promise.reject(new SupervisedStartError(spec.name, `${spec.name}: the supervisor is stopping`));
    return new Promise<string>((resolve, reject) => {
      const m: Managed = { spec, phase: 'backoff', attempt: 0, failures: 0, first: { resolve, reject, settled: false } };
      this.managed.set(spec.name, m);
      this.spawn(m);
    });
  }

  private spawn(m: Managed): void {
    const { spec } = m;
    m.attempt++;
    m.phase = 'starting';
    m.readyAt = undefined;
    const spawnedAt = performance.now();
    // Own process group: a terminal's Ctrl-C reaches only the launcher, which stops the children
    // in order; the IPC channel lets a child notice if the launcher dies (see lifecycle.ts).
    const child = spawn(process.execPath, [...(spec.nodeFlags ?? STAGE_NODE_FLAGS), this.entry, ...spec.args], {
      env: { ...spec.env, POSTLINE_SUPERVISED: '1' },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      detached: true,
    });
    m.child = child;
    let exited = false;
    const readyTimer = setTimeout(() => {
      if (m.child !== child || m.phase !== 'starting') return;
      this.emit('line', spec.name, `${spec.name} was not ready within ${this.policy.readyTimeoutMs} ms; killing it`);
      child.kill('SIGKILL');
    }, this.policy.readyTimeoutMs);
    readyTimer.unref();
    const markReady = (value: string): void => {
      clearTimeout(readyTimer);
      m.phase = 'ready';
      m.readyAt = performance.now();
      this.emit('ready', spec.name, m.attempt, Math.round(m.readyAt - spawnedAt));
      if (!m.first.settled) {
        m.first.settled = true;
        m.first.resolve(value);
      }
    };
    const onLine = (line: string): void => {
      let parsed: Record<string, unknown> | string = line;
      try {
        parsed = JSON.parse(line) as Record<string, unknown>;
      } catch {
        // plain text (e.g. a stack trace) is passed through as is
      }
      this.emit('line', spec.name, parsed);
      if (m.child === child && m.phase === 'starting' && typeof parsed === 'object' && parsed !== null && spec.ready) {
        const r = spec.ready(parsed);
        if (r) markReady(typeof r === 'string' ? r : '');
      }
    };
    for (const stream of [child.stdout!, child.stderr!]) {
      // A pipe error must not become an unhandled 'error' in the launcher; the exit follows.
      stream.on('error', (err) => this.emit('line', spec.name, `${spec.name} output: ${err.message}`));
      readline.createInterface({ input: stream }).on('line', onLine);
    }
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (exited) return;
      exited = true;
      clearTimeout(readyTimer);
      this.exited(m, child, code, signal);
    };
    // Spawn failures (EAGAIN, ENOMEM) and IPC errors arrive here; without a listener they
    // would throw in the launcher. A failed spawn has no exit event of its own.
    child.on('error', (err) => {
      this.emit('line', spec.name, `${spec.name}: ${err.message}`);
      if (child.pid === undefined) onExit(null, null);
    });
    child.on('exit', onExit);
    if (child.pid !== undefined) this.emit('spawn', spec.name, child.pid, m.attempt);
    if (!spec.ready && child.pid !== undefined) markReady('');
  }

  private exited(m: Managed, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (m.child !== child) return;
    const phase = m.phase;
    this.emit('exit', m.spec.name, code, signal, phase);
    if (phase === 'stopping' || this.stopped || (m.spec.onDemand && code === 0)) {
      m.phase = 'stopped';
      this.settleFirst(m, `${m.spec.name} exited before it was ready`);
      return;
    }
    const readyForMs = m.readyAt === undefined ? undefined : performance.now() - m.readyAt;
    const decision = decideRestart({ code, signal, readyForMs, previousFailures: m.failures }, this.policy);
    m.failures = decision.failures;
    if (decision.action === 'give-up') {
      m.phase = 'given-up';
      const reason = `${m.spec.name} exited (${describeExit(code, signal)}) and is not restarted: ${decision.reason}`;
      this.emit('give-up', m.spec.name, reason, decision.failures);
      this.settleFirst(m, reason);
      return;
    }
    m.phase = 'backoff';
    this.emit('restart', m.spec.name, decision.failures, decision.delayMs, describeExit(code, signal), phase);
    m.timer = setTimeout(() => {
      m.timer = undefined;
      if (!this.stopped && m.phase === 'backoff') this.spawn(m);
    }, decision.delayMs);
  }

  private settleFirst(m: Managed, reason: string): void {
    if (m.first.settled) return;
    m.first.settled = true;
    m.first.reject(new SupervisedStartError(m.spec.name, reason));
  }

  /**
   * Stops restarting anything, then SIGTERMs each child in `order` and waits for it to exit
   * (SIGKILL after `graceMs`); children not named are stopped last. Safe to call twice.
   */
  async stop(order: string[], graceMs = 15_000): Promise<void> {
    this.stopped = true;
    const names = [...new Set([...order.filter((n) => this.managed.has(n)), ...this.managed.keys()])];
    for (const m of this.managed.values()) clearTimeout(m.timer);
    for (const name of names) {
      const m = this.managed.get(name)!;
      this.settleFirst(m, `${name} was stopped before it was ready`);
      const child = m.child;
      if (!child || child.exitCode !== null || child.signalCode !== null || child.pid === undefined) {
        if (m.phase !== 'given-up') m.phase = 'stopped';
        continue;
      }
      m.phase = 'stopping';
      await new Promise<void>((resolve) => {
        const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
        child.once('exit', () => {
          clearTimeout(kill);
          resolve();
        });
        child.kill('SIGTERM');
      });
    }
  }
}
