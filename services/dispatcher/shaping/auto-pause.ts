/**
 * Auto-pause: a source address (or a pool) whose recipient-class bounce rate over a sliding
 * window passes a threshold — with a minimum sample, so three bounces of the first five do not
 * count — leaves rotation, and resumes after a cool-down or by command. Only recipient-class
 * bounces count (unknown or disabled mailboxes: a bad list, which providers hold against the
 * sending address); a block of our address (5.7.x) or a full mailbox does not. Pure: time is
 * passed in; the caller schedules `due` with a timer.
 */
import { classifyBounce } from '../../../shared/bounces/classify.js';

/** SMTP reply pieces, as in a `bounced` outcome: a recipient-class bounce of the rule table (shared/bounces), except a full mailbox. */
export function isRecipientClassBounce(code: number | undefined, enhanced: string | undefined, text: string | undefined): boolean {
  if (code !== undefined && (code < 500 || code >= 600)) return false;
  const v = classifyBounce({ code, enhanced, text });
  // A full mailbox is the recipient's, but says nothing about the quality of the list.
  return v.bounceClass === 'recipient' && v.category !== 'mailbox-full';
}

export interface AutoPauseOptions {
  windowMs: number;
  minSample: number;
  /** Recipient-class bounces / (sent + bounced) above which a key is paused. */
  threshold: number;
  cooldownMs: number;
}

export type OutcomeKind = 'sent' | 'bounced' | 'recipient-bounce';

export interface PauseTransition {
  key: string;
  paused: boolean;
  /** paused: the rate and sample that tripped it; resumed: why. */
  rate?: number;
  sample?: number;
  until?: number;
  reason: 'bounce-rate' | 'complaint-rate' | 'cooldown' | 'command';
}

const SLOTS = 12;

interface Slot {
  start: number;
  sent: number;
  bounced: number;
  recipient: number;
}

interface KeyState {
  slots: Slot[];
  pausedUntil?: number;
}

export class AutoPause {
  private readonly keys = new Map<string, KeyState>();

  constructor(private readonly o: AutoPauseOptions) {}

  /** Records one outcome of `key`; returns the transition when it paused the key. */
  record(key: string, kind: OutcomeKind, now: number): PauseTransition | undefined {
    const s = this.state(key);
    const slotMs = this.o.windowMs / SLOTS;
    const start = Math.floor(now / slotMs) * slotMs;
    let slot = s.slots[s.slots.length - 1];
    if (!slot || slot.start !== start) {
      slot = { start, sent: 0, bounced: 0, recipient: 0 };
      s.slots.push(slot);
    }
    s.slots = s.slots.filter((x) => x.start > now - this.o.windowMs);
    if (kind === 'sent') slot.sent++;
    else slot.bounced++;
    if (kind === 'recipient-bounce') slot.recipient++;
    if (s.pausedUntil !== undefined) return undefined;
    const { rate, sample } = this.rateOf(s);
    if (sample < this.o.minSample || rate <= this.o.threshold) return undefined;
    s.pausedUntil = now + this.o.cooldownMs;
    return { key, paused: true, rate, sample, until: s.pausedUntil, reason: 'bounce-rate' };
  }

  paused(key: string, now: number): boolean {
    const until = this.keys.get(key)?.pausedUntil;
    return until !== undefined && now < until;
  }

  /** Resumes every key whose cool-down has passed (its window starts afresh). */
  due(now: number): PauseTransition[] {
    const out: PauseTransition[] = [];
    for (const [key, s] of this.keys) {
      if (s.pausedUntil !== undefined && now >= s.pausedUntil) {
        this.clear(key);
        out.push({ key, paused: false, reason: 'cooldown' });
      }
    }
    return out;
  }

  /**
   * Pauses `key` until `until` because another replica paused it (its `paused` event): no
   * transition (that replica announced it). A pause already in force keeps the later end.
   * False when `until` has passed or the key was paused already.
   */
  hold(key: string, until: number, now: number): boolean {
    if (until <= now) return false;
    const s = this.state(key);
    const was = s.pausedUntil !== undefined;
    s.pausedUntil = Math.max(s.pausedUntil ?? 0, until);
    return !was;
  }

  /** Resumes `key` at once (the ops command); undefined when it was not paused. */
  resume(key: string): PauseTransition | undefined {
    if (this.keys.get(key)?.pausedUntil === undefined) return undefined;
    this.clear(key);
    return { key, paused: false, reason: 'command' };
  }

  /** The earliest cool-down end (undefined: nothing paused). */
  nextDue(): number | undefined {
    let next: number | undefined;
    for (const s of this.keys.values()) if (s.pausedUntil !== undefined && (next === undefined || s.pausedUntil < next)) next = s.pausedUntil;
    return next;
  }

  /** Paused keys with the time each resumes by itself. */
  pausedKeys(): Array<{ key: string; until: number }> {
    return [...this.keys].filter(([, s]) => s.pausedUntil !== undefined).map(([key, s]) => ({ key, until: s.pausedUntil! }));
  }

  /** The key's recipient-class bounce rate and sample in the window at `now`. */
  stats(key: string, now: number): { rate: number; sample: number } {
    const s = this.keys.get(key);
    if (!s) return { rate: 0, sample: 0 };
    return this.rateOf({ slots: s.slots.filter((x) => x.start > now - this.o.windowMs) });
  }

  private rateOf(s: Pick<KeyState, 'slots'>): { rate: number; sample: number } {
    let sample = 0;
    let recipient = 0;
    for (const x of s.slots) {
      sample += x.sent + x.bounced;
      recipient += x.recipient;
    }
    return { rate: sample === 0 ? 0 : recipient / sample, sample };
  }

  private state(key: string): KeyState {
    let s = this.keys.get(key);
    if (!s) this.keys.set(key, (s = { slots: [] }));
    return s;
  }

  private clear(key: string): void {
    // A resumed key starts a fresh window: the bounces that paused it must not pause it again at once.
    this.keys.set(key, { slots: [] });
  }
}
