/**
 * What the dispatcher remembers about recently handled deliveries, so a dispatch record seen
 * again — redelivered after a crash or rebalance, moved twice by a scheduler killed before its
 * commit, rendered twice by a renderer killed before its commit — does not reach the SMTP
 * server twice.
 *
 * The key is one recipient of one attempt of one message: (messageId, attempt, recipient). A
 * retry record carries the next attempt number and a replayed dead letter one more again, so
 * new work never collides with remembered work; only a repeat of the very same attempt does.
 *
 * An entry is either `complete` (every write of the outcome is acked: skip the recipient) or
 * `pending` with the SMTP verdict and what of it is already durable (the server answered, but
 * recording the outcome failed — the broker went away): a repeat then records the remembered
 * verdict instead of sending again.
 *
 * A recipient a message was *delivered* to (a `sent` outcome, of any attempt) is also remembered
 * without its attempt: no later or earlier attempt of that message is sent to it again. That is
 * the crash between a deferral's retry record and its `deferred` event: the redelivered attempt
 * is sent (nothing said it was handled), and the retry record's next attempt must then not be.
 * A message id is never meant to reach one recipient twice (a dead letter holds only what was not
 * sent), so this never holds back wanted mail.
 *
 * Bounded: the oldest entries are forgotten first (insertion order, refreshed on update).
 */

export type LedgerEntry<P> = { state: 'complete' } | { state: 'pending'; progress: P };

const COMPLETE = { state: 'complete' } as const;

export class DeliveryLedger<P> {
  private readonly entries = new Map<string, LedgerEntry<P>>();

  /** `maxEntries` 0 disables the ledger (nothing is remembered). */
  constructor(readonly maxEntries: number) {}

  get enabled(): boolean {
    return this.maxEntries > 0;
  }

  get size(): number {
    return this.entries.size;
  }

  /** What is known of this attempt for this recipient; complete, whatever the attempt, once the message was delivered to it. */
  get(messageId: string, attempt: number, recipient: string): LedgerEntry<P> | undefined {
    return this.entries.get(keyOf(messageId, attempt, recipient)) ?? this.entries.get(deliveredKey(messageId, recipient));
  }

  /** These recipients' outcome of this attempt is durable; `delivered` when it was `sent` (then every attempt skips them). */
  complete(messageId: string, attempt: number, recipients: string[], delivered = false): void {
    for (const r of recipients) {
      if (!delivered) {
        this.put(keyOf(messageId, attempt, r), COMPLETE);
        continue;
      }
      // One entry per delivered recipient (the bound counts entries): its delivered key answers
      // for this attempt too, so the attempt's own (a pending verdict, say) is dropped.
      if (this.enabled) this.entries.delete(keyOf(messageId, attempt, r));
      this.put(deliveredKey(messageId, r), COMPLETE);
    }
  }

  /** These recipients have an SMTP verdict that is not (entirely) durable yet. */
  pending(messageId: string, attempt: number, recipients: string[], progress: P): void {
    const entry: LedgerEntry<P> = { state: 'pending', progress };
    for (const r of recipients) this.put(keyOf(messageId, attempt, r), entry);
  }

  private put(key: string, entry: LedgerEntry<P>): void {
    if (!this.enabled) return;
    this.entries.delete(key);
    this.entries.set(key, entry);
    if (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }
}

/** Recipients are compared case-insensitively (the domain part is lower-case already). */
function keyOf(messageId: string, attempt: number, recipient: string): string {
  return `${messageId}\u0000${attempt}\u0000${recipient.toLowerCase()}`;
}

/** A delivered recipient, whatever the attempt (attempts are numbers: `*` never is one). */
function deliveredKey(messageId: string, recipient: string): string {
  return `${messageId}\u0000*\u0000${recipient.toLowerCase()}`;
}

/** The recipients of a record split by what the ledger knows about them. */
export interface KnownRecipients<P> {
  /** Outcome durable already: nothing to do. */
  done: string[];
  /** Verdict known, recording unfinished: record it, do not send. */
  pending: Map<P, string[]>;
  /** Unknown: send. */
  todo: string[];
}

export function splitRecipients<P>(ledger: DeliveryLedger<P>, messageId: string, attempt: number, recipients: string[]): KnownRecipients<P> {
  const out: KnownRecipients<P> = { done: [], pending: new Map(), todo: [] };
  for (const r of recipients) {
    const e = ledger.get(messageId, attempt, r);
    if (!e) out.todo.push(r);
    else if (e.state === 'complete') out.done.push(r);
    else out.pending.set(e.progress, [...(out.pending.get(e.progress) ?? []), r]);
  }
  return out;
}
