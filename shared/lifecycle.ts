/**
 * Ordered, idempotent shutdown. Steps run in the order they were added (stop fetching, drain
 * in-flight work, close SMTP fleets, disconnect); each runs even if an earlier one failed, and
 * a hard deadline ends the process if draining outlives the grace period.
 */
import type { Logger } from 'pino';

export type ShutdownStep = [name: string, run: () => unknown];

export class Shutdown {
  private steps: ShutdownStep[] = [];
  private running?: Promise<boolean>;

  constructor(private readonly logger: Logger) {}

  /** Adds a step; steps run in insertion order. */
  add(name: string, run: () => unknown): this {
    this.steps.push([name, run]);
    return this;
  }

  /** True once `run` was called: stopping is under way, consumers leaving their groups is expected. */
  get started(): boolean {
    return this.running !== undefined;
  }

  /** Runs every step once; later calls return the same promise. Resolves true if all succeeded. */
  run(): Promise<boolean> {
    this.running ??= (async () => {
      let ok = true;
      for (const [name, step] of this.steps) {
        const started = performance.now();
        try {
          await step();
          this.logger.debug({ step: name, ms: Math.round(performance.now() - started) }, 'shutdown step done');
        } catch (err) {
          ok = false;
          this.logger.error({ step: name, err }, 'shutdown step failed');
        }
      }
      return ok;
    })();
    return this.running;
  }

  /** On SIGTERM/SIGINT: run the steps, then exit; exit 1 if they take longer than `graceMs`. */
  installSignalHandlers(graceMs: number, exit: (code: number) => void = (c) => process.exit(c)): void {
    const onSignal = (signal: NodeJS.Signals): void => {
      this.logger.info({ signal, graceMs }, 'shutting down');
      setTimeout(() => {
        this.logger.error({ graceMs }, 'shutdown grace period exceeded; exiting');
        exit(1);
      }, graceMs).unref();
      void this.run().then((ok) => exit(ok ? 0 : 1));
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
    shutdownWhenSupervisorGoes(() => onSignal('SIGHUP'));
  }
}

/**
 * Under `postline start` each stage runs in its own process group (so a terminal's Ctrl-C
 * reaches only the launcher, which stops the stages in order). Should the launcher itself die
 * without stopping them, the IPC channel to it disconnects: shut down then rather than linger
 * as an orphan. Only when started with an IPC channel (POSTLINE_SUPERVISED=1).
 */
export function shutdownWhenSupervisorGoes(onGone: () => void, env: NodeJS.ProcessEnv = process.env): void {
  if (env.POSTLINE_SUPERVISED !== '1' || !process.channel) return;
  process.once('disconnect', onGone);
  // The channel must not keep a stage alive that has finished shutting down.
  process.channel.unref();
}
