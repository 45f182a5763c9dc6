/**
 * Inbound routes at the inbound SMTP service: which RCPT TO addresses fall under a tenant's
 * route (`match`), what a received message becomes (`prepare`: parsed once with mailparser,
 * checked once with mailauth, one `InboundMail` record per tenant) and making it durable
 * (`deliver`: each record on `email.inbound` and a `received` event on `email.events`; the
 * listener answers 250 only once both are acknowledged).
 */
import { createHash } from 'node:crypto';
import type { DNSResolver } from 'mailauth';
import type { EventInput } from '../../shared/events.js';
import { InboundMailContract, type InboundMail } from '../../shared/contracts/inbound-mail.js';
import type { InboundRouteBook, RoutedRecipient } from '../../shared/inbound-routes/inbound-route-book.js';
import { UnparseableMail, parseInboundMail, type InboundMailLimits } from './inbound-mail-parser.js';
import { checkAuth } from './inbound-mail-auth.js';
import { fitRecord, inboundMailRecords } from './inbound-mail-records.js';

export interface InboundRoutesReceiverOptions {
  book: Pick<InboundRouteBook, 'match'>;
  limits: InboundMailLimits;
  /** DNS for the SPF, DKIM and DMARC checks. */
  resolver: DNSResolver;
  authTimeoutMs: number;
  /** This service's host name. */
  mta: string;
  /** Largest record `email.inbound` takes (its max.message.bytes less room for the batch); larger ones are cut (`fitRecord`). */
  maxRecordBytes: number;
  /** Produces a record to `email.inbound`; resolves once durable. */
  produce(record: InboundMail): Promise<unknown>;
  /** Publishes an event; resolves once durable. */
  publish(event: EventInput): Promise<unknown>;
  now?: () => Date;
}

/** What the listener knows of the SMTP transaction. */
export interface Transaction {
  envelopeFrom: string;
  remoteAddress: string;
  helo?: string;
}

const domainOf = (address: string | undefined): string | undefined => (address && address.includes('@') ? address.slice(address.lastIndexOf('@') + 1).toLowerCase() : undefined);

export class InboundRoutesReceiver {
  private readonly now: () => Date;

  constructor(private readonly opts: InboundRoutesReceiverOptions) {
    this.now = opts.now ?? (() => new Date());
  }

  match(address: string): RoutedRecipient | undefined {
    return this.opts.book.match(address);
  }

  /** The records of a message to `recipients` (all routed); throws UnparseableMail for a message that cannot be read. */
  async prepare(raw: Buffer, tx: Transaction, recipients: readonly RoutedRecipient[]): Promise<InboundMail[]> {
    const receivedAt = this.now();
    const [parsed, auth] = await Promise.all([
      parseInboundMail(raw, this.opts.limits),
      checkAuth(raw, { ip: tx.remoteAddress, helo: tx.helo, sender: tx.envelopeFrom, mta: this.opts.mta, resolver: this.opts.resolver, timeoutMs: this.opts.authTimeoutMs }),
    ]);
    const digest = createHash('sha256').update(raw).digest('hex');
    const records = inboundMailRecords(recipients, { digest, size: raw.length, envelopeFrom: tx.envelopeFrom, remote: { ip: tx.remoteAddress, ...(tx.helo ? { helo: tx.helo } : {}) }, receivedAt }, parsed, auth);
    return records.map((r) => fitRecord(r, this.opts.maxRecordBytes, (x) => InboundMailContract.encode(x).length) ?? tooLarge(r));
  }

  /** Each record on `email.inbound` and its `received` event; resolves once all are durable. */
  async deliver(records: readonly InboundMail[]): Promise<void> {
    await Promise.all(records.flatMap((r) => [this.opts.produce(r), this.opts.publish(receivedEvent(r))]));
  }
}

function tooLarge(r: InboundMail): never {
  throw new UnparseableMail(`the message's headers alone are larger than an email.inbound record may be (${r.headers.length} header lines)`);
}

/** The `received` event of a record (messageId = the record's id). */
export function receivedEvent(r: InboundMail): EventInput {
  const fromDomain = domainOf(r.from?.[0]?.address);
  return {
    type: 'received',
    messageId: r.id,
    tenant: r.tenant,
    at: r.receivedAt,
    recipients: r.envelope.to,
    domain: r.domain,
    via: 'smtp',
    ...(fromDomain ? { fromDomain } : {}),
    ...(r.auth ? { reason: `spf=${r.auth.spf} dkim=${r.auth.dkim} dmarc=${r.auth.dmarc}` } : {}),
  };
}
