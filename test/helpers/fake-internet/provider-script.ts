/**
 * How a fake mailbox provider answers, as decisions without sockets: throttling per source
 * address (Gmail's 421 4.7.28), greylisting per (source, sender, recipient), unknown users,
 * blocklisted sources and a TLS requirement. The SMTP server in `smtp-provider.ts` asks these at
 * each command and sends what they return.
 */

/** A refusal: the SMTP code and the text (starting with the enhanced status code). */
export interface ScriptedReply {
  code: number;
  message: string;
}

export interface ProviderScript {
  /**
   * Answer MAIL FROM with `421 4.7.28 … rate limited` (and close, as smtp-server does after any
   * 421) once this many transactions from the same source address were accepted within
   * `throttleWindowMs`. Counts accepted MAIL FROMs, so it is exact under concurrency.
   */
  throttleAfterPerMinute?: number;
  /** The throttling window (default 60 000 ms: "per minute"). */
  throttleWindowMs?: number;
  /**
   * Answer RCPT TO with `451 4.7.1` the first time a (source address, sender, recipient) triple is
   * seen; later attempts pass once `greylistMinDelayMs` (default 0) has passed since the first.
   */
  greylist?: boolean;
  greylistMinDelayMs?: number;
  /** Recipients answered with `550 5.1.1` (case-insensitive). */
  unknownUsers?: string[];
  /** Source addresses answered with `554 5.7.1`. */
  blockSources?: string[];
  /** Where a blocklisted source is refused: at MAIL FROM (default) or as the greeting (connection closed). */
  blockAt?: 'mail' | 'connect';
  /**
   * Greet at most this many connections open at once from one source address; the ones beyond
   * get `421 4.7.0 Too many concurrent SMTP connections` as the greeting (and are closed).
   */
  maxConnectionsPerSource?: number;
  /** Delay before every reply to MAIL FROM, RCPT TO and the end of DATA (a slow provider). */
  replyDelayMs?: number;
  /** Any other per-recipient answer; `undefined` falls through to the rules above. */
  rcpt?: (rcpt: string, ctx: { peer: string; from: string }) => ScriptedReply | undefined;
}

export const THROTTLED: ScriptedReply = {
  code: 421,
  message:
    '4.7.28 Our system has detected an unusual rate of unsolicited mail originating from your IP address. To protect our users from spam, mail sent from your IP address has been temporarily rate limited.',
};
export const GREYLISTED: ScriptedReply = { code: 451, message: '4.7.1 Greylisted: the mail server is temporarily rejecting this message, try again later.' };
export const UNKNOWN_USER: ScriptedReply = { code: 550, message: '5.1.1 The email account that you tried to reach does not exist.' };
export const BLOCKED: ScriptedReply = { code: 554, message: '5.7.1 Service unavailable; client host blocked using a blocklist.' };
export const TOO_MANY_CONNECTIONS: ScriptedReply = { code: 421, message: '4.7.0 Too many concurrent SMTP connections from this IP address; please try again later.' };
export const TLS_REQUIRED: ScriptedReply = { code: 530, message: '5.7.0 Must issue a STARTTLS command first' };

/** The per-provider state the script needs (throttle windows, greylist memory). */
export class ProviderPolicy {
  private readonly accepted = new Map<string, number[]>();
  private readonly greylistSeen = new Map<string, number>();
  private readonly unknown: Set<string>;
  private readonly blocked: Set<string>;

  constructor(
    private readonly script: ProviderScript,
    private readonly tlsRequired: boolean,
    private readonly now: () => number = Date.now,
  ) {
    this.unknown = new Set((script.unknownUsers ?? []).map((u) => u.toLowerCase()));
    this.blocked = new Set(script.blockSources ?? []);
  }

  /** A refusal of the connection itself (sent as the greeting), or undefined to greet. `open` counts this one. */
  connect(peer: string, open: number): ScriptedReply | undefined {
    if (this.script.blockAt === 'connect' && this.blocked.has(peer)) return BLOCKED;
    if (this.script.maxConnectionsPerSource !== undefined && open > this.script.maxConnectionsPerSource) return TOO_MANY_CONNECTIONS;
    return undefined;
  }

  /** The answer to MAIL FROM; an accepted one counts towards the throttle. */
  mail(peer: string, secure: boolean): ScriptedReply | undefined {
    if (this.tlsRequired && !secure) return TLS_REQUIRED;
    if (this.blocked.has(peer)) return BLOCKED;
    const limit = this.script.throttleAfterPerMinute;
    if (limit !== undefined) {
      const since = this.now() - (this.script.throttleWindowMs ?? 60_000);
      const times = (this.accepted.get(peer) ?? []).filter((t) => t > since);
      if (times.length >= limit) {
        this.accepted.set(peer, times);
        return THROTTLED;
      }
      times.push(this.now());
      this.accepted.set(peer, times);
    }
    return undefined;
  }

  /** The answer to RCPT TO. */
  rcpt(peer: string, from: string, rcpt: string): ScriptedReply | undefined {
    const custom = this.script.rcpt?.(rcpt, { peer, from });
    if (custom) return custom;
    if (this.unknown.has(rcpt.toLowerCase())) return UNKNOWN_USER;
    if (this.script.greylist) {
      const key = `${peer}|${from.toLowerCase()}|${rcpt.toLowerCase()}`;
      const first = this.greylistSeen.get(key);
      if (first === undefined) {
        this.greylistSeen.set(key, this.now());
        return GREYLISTED;
      }
      if (this.now() - first < (this.script.greylistMinDelayMs ?? 0)) return GREYLISTED;
    }
    return undefined;
  }
}
