/**
 * Runs each stage of the embedded default as its own child process (`postline <stage>`), the
 * way Kubernetes runs pods: the stages use every core, a crash in one does not take the others
 * down, and it is restarted with backoff — which also shows the pipeline resuming from its
 * committed offsets. Stops in the order given (stages before the broker).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import readline from 'node:readline';
import { STAGE_NODE_FLAGS } from '../../shared/node-flags.js';

export interface ChildSpec {
  name: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  /** Resolves when a stdout line shows the child is ready (returns a value to keep, e.g. an address). */
  ready?: (line: Record<string, unknown>) => string | boolean | undefined;
}

interface Running {
  spec: ChildSpec;
  child: ChildProcess;
  stopping: boolean;
  restarts: number;
}

/** Emits 'line' (name, parsed JSON or raw string) for every output line, 'exit' (name, code, signal), 'restart' (name, attempt). */
export class Supervisor extends EventEmitter {
  private running = new Map<string, Running>();
  private stopped = false;

  constructor(private readonly entry: string) {
    super();
  }

  /** Starts a child and waits until its `ready` predicate matches a log line (or it exits). */
  start(spec: ChildSpec, timeoutMs = 30_000): Promise<string> {
    return new Promise((resolve, reject) => {
      // Own process group: a terminal's Ctrl-C reaches only the launcher, which stops the stages
      // in order; the IPC channel lets a child notice if the launcher dies (see lifecycle.ts).
      const child = spawn(process.execPath, [...STAGE_NODE_FLAGS, this.entry, ...spec.args], {
        env: { ...spec.env, POSTLINE_SUPERVISED: '1' },
        stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
        detached: true,
      });
      const state: Running = this.running.get(spec.name) ?? { spec, child, stopping: false, restarts: 0 };
      state.child = child;
      this.running.set(spec.name, state);
      let settled = !spec.ready;
      if (!spec.ready) resolve('');
      const timer = setTimeout(() => {
        if (!settled) {
          settled = true;
          reject(new Error(`${spec.name} was not ready within ${timeoutMs} ms`));
        }
      }, timeoutMs);
      const onLine = (line: string): void => {
        let parsed: Record<string, unknown> | string = line;
        try {
          parsed = JSON.parse(line) as Record<string, unknown>;
        } catch {
          // plain text (e.g. a stack trace) is passed through as is
        }
        this.emit('line', spec.name, parsed);
        if (!settled && typeof parsed === 'object' && spec.ready) {
          const r = spec.ready(parsed);
          if (r) {
            settled = true;
            clearTimeout(timer);
            resolve(typeof r === 'string' ? r : '');
          }
        }
      };
      readline.createInterface({ input: child.stdout! }).on('line', onLine);
      readline.createInterface({ input: child.stderr! }).on('line', onLine);
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        this.emit('exit', spec.name, code, signal);
        if (!settled) {
          settled = true;
          reject(new Error(`${spec.name} exited (code ${code}, signal ${signal}) before it was ready`));
          return;
        }
        if (!state.stopping && !this.stopped) this.restart(state);
      });
    });
  }

  private restart(state: Running): void {
    state.restarts++;
    const delay = Math.min(30_000, 500 * 2 ** Math.min(state.restarts, 6));
    this.emit('restart', state.spec.name, state.restarts, delay);
    setTimeout(() => {
      if (this.stopped) return;
      this.start(state.spec).catch((err: Error) => this.emit('line', state.spec.name, err.message));
    }, delay).unref();
  }

  /** SIGTERM each child in `order`, waiting for each to exit (SIGKILL after `graceMs`). */
  async stop(order: string[], graceMs = 15_000): Promise<void> {
    this.stopped = true;
    for (const name of order) {
      const state = this.running.get(name);
      if (!state || state.child.exitCode !== null || state.child.signalCode !== null) continue;
      state.stopping = true;
      await new Promise<void>((resolve) => {
        const kill = setTimeout(() => state.child.kill('SIGKILL'), graceMs);
        state.child.once('exit', () => {
          clearTimeout(kill);
          resolve();
        });
        state.child.kill('SIGTERM');
      });
    }
  }
}
