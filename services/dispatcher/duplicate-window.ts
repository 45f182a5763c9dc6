/**
 * Measures the window in which a crash would repeat an SMTP delivery: from the server's 250 to
 * (a) the `sent` event being durable — after that, a restarted dispatcher knows the delivery
 * from `email.events` and does not repeat it — and (b) the offset commit, after which the record
 * is not redelivered at all. Fed by the handler's 'verdict' events and the consumers'
 * 'committed' events; emits 'window' (until: 'recorded' | 'committed', ms).
 */
import { EventEmitter } from 'node:events';

/** Uncommitted sent records remembered per partition, at most (older ones are dropped). */
const MAX_TRACKED = 10_000;

export class DuplicateWindow extends EventEmitter {
  private readonly open = new Map<string, Array<{ offset: bigint; verdictAt: number }>>();

  /** A record's recipients were accepted at `verdictAt` and recorded at `durableAt` (performance.now()). */
  verdict(topic: string, partition: number, offset: string, verdictAt: number, durableAt: number): void {
    this.emit('window', 'recorded', durableAt - verdictAt);
    const key = `${topic}:${partition}`;
    const list = this.open.get(key) ?? [];
    list.push({ offset: BigInt(offset), verdictAt });
    if (list.length > MAX_TRACKED) list.splice(0, list.length - MAX_TRACKED);
    this.open.set(key, list);
  }

  /** The consumer committed `offset` (the next to read) of a partition. */
  committed(topic: string, partition: number, offset: string, now = performance.now()): void {
    const list = this.open.get(`${topic}:${partition}`);
    if (!list) return;
    const next = BigInt(offset);
    const still = list.filter((e) => {
      if (e.offset >= next) return true;
      this.emit('window', 'committed', now - e.verdictAt);
      return false;
    });
    this.open.set(`${topic}:${partition}`, still);
  }
}
