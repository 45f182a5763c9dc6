/**
 * The soak's bookkeeping, pure: which accepted messages ended (sent, bounced, expired,
 * suppressed, or failed / dead-lettered), which are stuck and which are lost, and how many
 * deliveries the relay saw twice.
 */
import { TERMINAL_EVENTS, type EmailEvent } from '../../shared/contracts/email-event.js';

export interface Accepted {
  id: string;
  domains: string[];
}

export interface Outcomes {
  accepted: number;
  ended: number;
  /** Accepted, with no terminal outcome for some domain (nor a message-level failure). */
  stuck: string[];
  /** Stuck and never seen past acceptance: not rendered, deferred, dead-lettered, anything. */
  lost: string[];
  /** Terminal outcomes by type, once per (message, domain). */
  byType: Record<string, number>;
}

export function outcomesOf(accepted: Accepted[], events: EmailEvent[], deadMessageIds: Set<string>): Outcomes {
  const terminal = new Map<string, string>();
  const messageFailed = new Set<string>();
  const seen = new Set<string>();
  for (const e of events) {
    if (e.type !== 'accepted') seen.add(e.messageId);
    if (!TERMINAL_EVENTS.has(e.type)) continue;
    if (e.domain) terminal.set(`${e.messageId} ${e.domain}`, e.type);
    else if (e.type === 'failed') messageFailed.add(e.messageId);
  }
  const byType: Record<string, number> = {};
  const stuck: string[] = [];
  for (const a of accepted) {
    if (messageFailed.has(a.id) || deadMessageIds.has(a.id)) {
      byType.failed = (byType.failed ?? 0) + 1;
      continue;
    }
    const types = a.domains.map((d) => terminal.get(`${a.id} ${d}`));
    if (types.some((t) => t === undefined)) stuck.push(a.id);
    else for (const t of types) byType[t!] = (byType[t!] ?? 0) + 1;
  }
  const lost = stuck.filter((id) => !seen.has(id) && !deadMessageIds.has(id));
  return { accepted: accepted.length, ended: accepted.length - stuck.length, stuck, lost, byType };
}

/** Deliveries the relay accepted more than once for one (message, recipient), and all deliveries. */
export function duplicatesOf(deliveries: Array<{ messageId: string | undefined; to: string[] }>): { duplicates: number; deliveries: number } {
  const counts = new Map<string, number>();
  for (const d of deliveries) for (const r of d.to) counts.set(`${d.messageId} ${r}`, (counts.get(`${d.messageId} ${r}`) ?? 0) + 1);
  let duplicates = 0;
  let total = 0;
  for (const c of counts.values()) {
    duplicates += c - 1;
    total += c;
  }
  return { duplicates, deliveries: total };
}

/** Accepted → sent latency (ms) per sent (message, domain), from the events' own timestamps. */
export function sentLatencies(events: EmailEvent[], acceptedAt: Map<string, number>, from = 0, to = Number.POSITIVE_INFINITY): number[] {
  const out: number[] = [];
  for (const e of events) {
    if (e.type !== 'sent') continue;
    const at = acceptedAt.get(e.messageId);
    if (at === undefined || at < from || at >= to) continue;
    out.push(Date.parse(e.at) - at);
  }
  return out;
}
