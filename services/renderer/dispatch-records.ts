/**
 * One `EmailReadyForDispatch` record per recipient domain, keyed by that domain (or by the key
 * `keys` gives it, e.g. its site from services/dispatcher/routing/site-keys.ts), on the
 * topic of the message's priority. Every record carries the same raw MIME: it is JSON-encoded
 * once and spliced into each record, so a message to many domains is not re-encoded per
 * domain (the MIME is most of the record).
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

type WithoutRaw = Omit<EmailReadyForDispatch, 'raw'>;

export function dispatchRecords(req: EmailRequested, plan: EnvelopePlan, raw: string, headers?: IHeaders, keys?: ReadonlyMap<string, string>): OutgoingRecord[] {
  const rawJson = JSON.stringify(raw);
  const topic = Topics.dispatch(req.priority);
  return plan.groups.map((group) => {
    const record: WithoutRaw = {
      schemaVersion: EMAIL_READY_VERSION,
      messageId: req.messageId,
      tenant: req.tenant,
      priority: req.priority,
      domain: group.domain,
      ...(req.pool ? { pool: req.pool } : {}),
      envelope: { from: plan.from.address, to: group.recipients },
      acceptedAt: req.acceptedAt,
      ...(req.tags?.length ? { tags: req.tags } : {}),
      attempt: 1,
    };
    const head = JSON.stringify(record);
    // `head` is a non-empty object: drop its closing brace and append the raw field.
    const value = Buffer.from(`${head.slice(0, -1)},"raw":${rawJson}}`);
    return { topic, message: { key: keys?.get(group.domain) ?? group.domain, value, ...(headers ? { headers } : {}) } };
  });
}
