/**
 * The fleets of a dispatcher, one per destination host, created on first use. Forwards every
 * fleet's events with the host attached, so metrics and logs subscribe in one place.
 *
 * Emits 'opened' (host, conn), 'closed' (host, conn, reason, err?), 'connect-failed' (host, err),
 * 'ceiling' (host, cap, untilMs).
 */
import { EventEmitter } from 'node:events';
import { SmtpFleet, type FleetOptions, type FleetStats } from './smtp-fleet.js';
import type { SmtpTarget } from './route.js';

export class FleetRegistry extends EventEmitter {
  private readonly fleets = new Map<string, SmtpFleet>();
  private closing?: Promise<void>;

  /** `optionsFor` lets a host get its own options (e.g. no warm connections for MX hosts). */
  constructor(private readonly optionsFor: (target: SmtpTarget) => FleetOptions) {
    super();
  }

  /** The fleet for a host, created (not warmed) on first use. */
  get(target: SmtpTarget): SmtpFleet {
    let fleet = this.fleets.get(target.key);
    if (!fleet) {
      fleet = new SmtpFleet(target, this.optionsFor(target));
      for (const event of ['opened', 'closed', 'connect-failed', 'ceiling']) {
        fleet.on(event, (...args: unknown[]) => this.emit(event, target.key, ...args));
      }
      this.fleets.set(target.key, fleet);
    }
    return fleet;
  }

  /** Idle connections of the fleet of `key` (0 when it has no fleet yet). */
  idle(key: string): number {
    return this.fleets.get(key)?.stats().idle ?? 0;
  }

  /** Opens the warm connections of these hosts' fleets. */
  warm(targets: SmtpTarget[]): void {
    for (const t of targets) this.get(t).warm();
  }

  /**
   * Starts a background probe connection on the fleets whose breaker is `key` (the fleet of that
   * host, or every source address's fleet of one MX host), if one exists and has none.
   */
  probe(key: string): boolean {
    for (const fleet of this.fleets.values()) if ((fleet.target.breakerKey ?? fleet.target.key) === key && fleet.probe()) return true;
    return false;
  }

  stats(): FleetStats[] {
    return [...this.fleets.values()].map((f) => f.stats());
  }

  /** Closes every fleet (QUIT on each connection); safe to call twice. */
  close(): Promise<void> {
    this.closing ??= Promise.all([...this.fleets.values()].map((f) => f.close())).then(() => undefined);
    return this.closing;
  }
}
