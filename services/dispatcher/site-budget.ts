/**
 * The connection budget of one (source address, site): the fleets of that site's MX hosts (one
 * per host) draw their connections from it, so the site's connection limit holds across all of
 * them — ten thousand domains on one provider's MX hosts share one cap. A fleet whose messages
 * wait while the budget is spent makes room by retiring an idle connection of another host of
 * the site; whenever a connection of the site closes, the waiting fleets try again.
 */
import type { SmtpFleet } from './smtp-fleet.js';

export class SiteBudget {
  private readonly members = new Set<SmtpFleet>();

  constructor(
    readonly key: string,
    /** Most connections open or opening at once across the site's fleets. */
    private maxConnections: number,
    /** Messages a connection carries before it says QUIT (undefined: no limit). */
    private messagesPerConnection?: number,
  ) {}

  get max(): number {
    return this.maxConnections;
  }

  get maxMessagesPerConnection(): number | undefined {
    return this.messagesPerConnection;
  }

  /**
   * New limits (the shaper's adaptive back-off and its recovery): idle connections above the new
   * maximum say QUIT now, busy ones when their message is done (`over`); a higher maximum lets
   * waiting fleets open more at once.
   */
  set(max: number, maxMessagesPerConnection?: number): void {
    this.maxConnections = max;
    if (maxMessagesPerConnection !== undefined && Number.isFinite(maxMessagesPerConnection)) this.messagesPerConnection = maxMessagesPerConnection;
    let excess = this.used() - max;
    for (const m of this.members) while (excess > 0 && m.retireIdle()) excess--;
    for (const m of this.members) m.poke();
  }

  /** More connections in play than the maximum (after it was lowered): a finished one closes. */
  over(): boolean {
    let staying = 0;
    for (const m of this.members) staying += m.staying();
    return staying > this.maxConnections;
  }

  private used(): number {
    let used = 0;
    for (const m of this.members) used += m.inPlay();
    return used;
  }

  /** Called by a fleet when it is created. */
  join(fleet: SmtpFleet): void {
    this.members.add(fleet);
    const wake = (): void => {
      for (const m of this.members) if (m !== fleet) m.poke();
    };
    fleet.on('closed', wake);
    fleet.on('connect-failed', wake);
  }

  /** Connections that may still be opened across the site. */
  free(): number {
    return Math.max(0, this.maxConnections - this.used());
  }

  /** A fleet has an idle connection its own messages do not need: waiting fleets may claim it. */
  idled(fleet: SmtpFleet): void {
    for (const m of this.members) if (m !== fleet) m.poke();
  }

  /** Retires one idle connection of another fleet of the site; false when none is idle. */
  makeRoom(requester: SmtpFleet): boolean {
    for (const m of this.members) if (m !== requester && m.retireIdle()) return true;
    return false;
  }
}
