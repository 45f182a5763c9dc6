/**
 * Deterministic, realistic `email.events` streams for benchmarks and volume tests: each
 * message is accepted, rendered, attempted per recipient domain (sometimes deferred first,
 * sometimes bounced), and sometimes opened. Seeded, so a run is reproducible.
 */
import type { EmailEvent, EventType } from '../../../shared/contracts/email-event.js';
import { seededRandom } from '../../helpers/seeded-random.js';

export interface SyntheticOptions {
  /** Messages to generate (about 4.5 events each). */
  messages: number;
  tenants?: string[];
  domains?: string[];
  /** Acceptance times are spread uniformly over [start, start + spanMs). */
  start: number;
  spanMs: number;
  seed?: number;
}

const PRIORITIES = ['critical', 'transactional', 'bulk'];
const POOLS = ['transactional', 'marketing', 'dedicated'];
const DEFAULT_DOMAINS = ['gmail.com', 'yahoo.com', 'outlook.com', 'example.org', 'icloud.com', 'web.de', 'proton.me', 'corp.example'];

/** Calls `emit` for every event, message by message (events of one message in time order). */
export function generateEvents(opts: SyntheticOptions, emit: (e: EmailEvent) => void): number {
  const rand = seededRandom(opts.seed ?? 42);
  const tenants = opts.tenants ?? ['acme', 'globex', 'initech'];
  const domains = opts.domains ?? DEFAULT_DOMAINS;
  let n = 0;
  let eventSeq = 0;
  const ev = (e: Omit<EmailEvent, 'schemaVersion' | 'eventId' | 'stage'> & { stage?: string }): void => {
    emit({ schemaVersion: 1, eventId: `ev-${opts.seed ?? 42}-${eventSeq++}`, stage: 'dispatcher', ...e } as EmailEvent);
    n++;
  };
  for (let i = 0; i < opts.messages; i++) {
    const tenant = tenants[Math.floor(rand() * tenants.length)];
    const priority = PRIORITIES[Math.floor(rand() * PRIORITIES.length)];
    const pool = POOLS[Math.floor(rand() * POOLS.length)];
    const messageId = `msg-${opts.seed ?? 42}-${i}`;
    const accepted = opts.start + Math.floor(rand() * opts.spanMs);
    const domain = domains[Math.floor(rand() * domains.length)];
    const recipients = [`user${i}@${domain}`];
    const tags = rand() < 0.5 ? ['newsletter'] : ['receipt', 'billing'];
    const base = { messageId, tenant, priority, tags };
    const iso = (t: number): string => new Date(t).toISOString();
    ev({ ...base, type: 'accepted', at: iso(accepted), stage: 'ingest', recipients });
    ev({ ...base, type: 'rendered', at: iso(accepted + 20), stage: 'renderer', recipients });
    let t = accepted + 50 + Math.floor(rand() * 400);
    let attempt = 1;
    if (rand() < 0.1) {
      ev({ ...base, type: 'deferred', at: iso(t), recipients, domain, pool, attempt, smtp: { code: 451, enhanced: '4.7.1', message: 'Greylisted, try again later', host: `mx.${domain}` }, acceptedAt: iso(accepted) });
      t += 60_000;
      attempt++;
    }
    const outcome: EventType = rand() < 0.03 ? 'bounced' : 'sent';
    const smtp = outcome === 'sent' ? { code: 250, message: '2.0.0 OK queued', host: `mx.${domain}` } : { code: 550, enhanced: '5.1.1', message: 'User unknown', host: `mx.${domain}` };
    ev({ ...base, type: outcome, at: iso(t), recipients, domain, pool, attempt, smtp, latencyMs: 30 + Math.floor(rand() * 200), connectionReused: rand() < 0.9, acceptedAt: iso(accepted) });
    if (outcome === 'sent' && rand() < 0.4) ev({ ...base, type: 'opened', at: iso(t + 3_600_000), stage: 'tracker', recipients });
  }
  return n;
}
