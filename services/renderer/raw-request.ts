/**
 * The renderer's raw path, decoding side: a raw-MIME `EmailRequested` (the SMTP gateway's, or a
 * foreign producer's) → the checked record, its envelope plan and the message to send. Nothing
 * is composed: the client's message is kept (raw-message.ts), the dispatch records come from the
 * SMTP envelope's recipients grouped by domain, and the From header's domain must be one of the
 * tenant's sender domains, as on the API. Pure; every failure is permanent (dead letter).
 */
import type { Priority } from '../../shared/config.js';
import { RawEmailRequestedContract, type RawEmailRequested } from '../../shared/contracts/email-requested.js';
import { PermanentError, ValidationError } from '../../shared/errors.js';
import { senderDomainProblem, type SenderDomainPolicy } from '../../shared/sender-domains.js';
import { groupByDomain, parseEnvelopeAddress, type EnvelopeAddress } from './recipient-domains.js';
import type { EnvelopePlan, Issue } from './request-checks.js';
import { prepareRawMessage, type PreparedRaw } from './raw-message.js';

export interface RawRequestPlan {
  req: RawEmailRequested;
  /** `from` is the From header's address (DKIM and feedback tokens use its domain). */
  plan: EnvelopePlan;
  /** The envelope sender without signed return paths: MAIL FROM as given, else the From address. */
  envelopeFrom: string;
  prepared: PreparedRaw;
}

export interface RawRequestOptions {
  senderDomains: SenderDomainPolicy;
  /** The lane's priority; a record of another priority is PRIORITY_MISMATCH. */
  lane?: Priority;
  topic: string;
}

/** Decodes and checks a raw request record; throws PermanentError (ValidationError, SENDER_DOMAIN, RAW_*). */
export function decodeRawRequest(value: Buffer | null, opts: RawRequestOptions): RawRequestPlan {
  const req = RawEmailRequestedContract.decode(value);
  if (opts.lane !== undefined && req.priority !== opts.lane) {
    throw new PermanentError('PRIORITY_MISMATCH', `a ${req.priority} message on ${opts.topic}, the ${opts.lane} lane; produce it to its own lane or to the shared email.requested`);
  }
  const issues: Issue[] = [];
  const recipients: EnvelopeAddress[] = [];
  req.envelope.to.forEach((to, i) => {
    const parsed = parseEnvelopeAddress(to);
    if (parsed) recipients.push(parsed);
    else issues.push({ path: `envelope.to.${i}`, message: `not a valid address: ${JSON.stringify(to)}` });
  });
  const mailFrom = req.envelope.from ? parseEnvelopeAddress(req.envelope.from) : undefined;
  if (req.envelope.from && !mailFrom) issues.push({ path: 'envelope.from', message: `not a valid address: ${JSON.stringify(req.envelope.from)}` });
  if (issues.length > 0) throw new ValidationError(issues);
  const prepared = prepareRawMessage(Buffer.from(req.raw, 'base64'), req);
  const from = parseEnvelopeAddress(prepared.from);
  if (!from) throw new ValidationError([{ path: 'raw', message: `From header: not a valid address: ${JSON.stringify(prepared.from)}` }]);
  for (const [field, address] of [['From header', from.address], ['envelope.from', mailFrom?.address]] as const) {
    const problem = address === undefined ? undefined : senderDomainProblem(opts.senderDomains, req.tenant, address);
    if (problem) throw new PermanentError('SENDER_DOMAIN', `${field}: ${problem}`);
  }
  const groups = groupByDomain(recipients);
  return {
    req,
    plan: { from, groups, recipients: groups.flatMap((g) => g.recipients) },
    envelopeFrom: mailFrom?.address ?? from.address,
    prepared,
  };
}
