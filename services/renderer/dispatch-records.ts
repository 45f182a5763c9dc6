/**
 * The `EmailReadyForDispatch` records of one message, on the topic of its priority: one per
 * recipient domain carrying the same raw MIME, or — with feedback on — one per recipient copy
 * (its own envelope sender and raw, see feedback-copies.ts). Each is keyed by its recipient
 * domain (or by the key `keys` gives that domain, e.g. its site from
 * services/dispatcher/routing/site-keys.ts). A raw is JSON-encoded once and spliced into every
 * record carrying it, so a message to many domains is not re-encoded per domain (the MIME is
 * most of the record).
 */
import type { IHeaders } from 'kafkajs';
import { Topics } from '../../shared/topics.js';
import type { EmailRequested } from '../../shared/contracts/email-requested.js';
import { EMAIL_READY_VERSION, type EmailReadyForDispatch } from '../../shared/contracts/email-ready-for-dispatch.js';
import type { EnvelopePlan } from './request-checks.js';

export interface OutgoingRecord {
  topic: string;
  message: { key: string; value: Buffer; headers?: IHeaders };
}

/**
 * What one dispatch record carries: a recipient domain's envelope and the MIME to send it,
 * `head + body`. Copies share one `body` string (the composed message) and differ in `head`
 * (their own signed header lines, '' without feedback), so the body is JSON-encoded once.
 */
export interface MessageCopy {
  domain: string;
  envelopeFrom: string;
  to: string[];
  head: string;
  body: string;
}

type WithoutRaw = Omit<EmailReadyForDispatch, 'raw'>;

/** One copy per recipient domain, all with the same raw and the From address as envelope sender. */
export function domainCopies(plan: EnvelopePlan, raw: string): MessageCopy[] {
  return plan.groups.map((g) => ({ domain: g.domain, envelopeFrom: plan.from.address, to: g.recipients, head: '', body: raw }));
}

/** The records of `copies`; a raw string stands for `domainCopies(plan, raw)`. */
export function dispatchRecords(
  req: Pick<EmailRequested, 'messageId' | 'tenant' | 'priority' | 'pool' | 'listId' | 'acceptedAt' | 'tags'>,
  plan: EnvelopePlan,
  copies: string | readonly MessageCopy[],
  headers?: IHeaders,
  keys?: ReadonlyMap<string, string>,
): OutgoingRecord[] {
  const list = typeof copies === 'string' ? domainCopies(plan, copies) : copies;
  const topic = Topics.dispatch(req.priority);
  let last: { body: string; json: string } | undefined;
  return list.map((copy) => {
    if (last?.body !== copy.body) last = { body: copy.body, json: JSON.stringify(copy.body) };
    const record: WithoutRaw = {
      schemaVersion: EMAIL_READY_VERSION,
      messageId: req.messageId,
      tenant: req.tenant,
      priority: req.priority,
      domain: copy.domain,
      ...(req.pool ? { pool: req.pool } : {}),
      envelope: { from: copy.envelopeFrom, to: copy.to },
      fromDomain: plan.from.domain,
      ...(req.listId ? { listId: req.listId } : {}),
      acceptedAt: req.acceptedAt,
      ...(req.tags?.length ? { tags: req.tags } : {}),
      attempt: 1,
    };
    const head = JSON.stringify(record);
    // `head` is a non-empty object: drop its closing brace and append the raw field. JSON of
    // head + body is JSON of head without its closing quote + JSON of body without its opening
    // one (the head ends with CRLF, so no surrogate pair is split).
    const raw = copy.head ? `${JSON.stringify(copy.head).slice(0, -1)}${last.json.slice(1)}` : last.json;
    const value = Buffer.from(`${head.slice(0, -1)},"raw":${raw}}`);
    return { topic, message: { key: keys?.get(copy.domain) ?? copy.domain, value, ...(headers ? { headers } : {}) } };
  });
}
