/**
 * What one record of `email.events` or `email.inbound` becomes: a delivery to each of its
 * tenant's endpoints whose filter wants its type (`email.<event type>`, `inbound.received`).
 * Pure: the consumer passes the endpoints.
 */
import type { KafkaMessage } from 'kafkajs';
import { Topics } from '../../shared/topics.js';
import { EmailEventContract } from '../../shared/contracts/email-event.js';
import { InboundMailContract } from '../../shared/contracts/inbound-mail.js';
import { INBOUND_WEBHOOK_TYPE, type WebhookEndpoint } from '../../shared/contracts/webhook-endpoint.js';
import { wants, webhookBodyFromJson, webhookTypeOfEvent } from '../../shared/webhooks/webhook-message.js';
import type { Delivery } from './deliverer.js';

export interface RecordPayload {
  tenant: string;
  type: string;
  webhookId: string;
  messageId: string;
  timestamp: string;
  data: unknown;
  /**
   * The request body, built around the record's own JSON (every endpoint gets the same bytes)
   * the first time it is read: a record no endpoint wants never builds one.
   */
  readonly body: string;
}

class Payload implements RecordPayload {
  private built?: string;

  constructor(
    readonly tenant: string,
    readonly type: string,
    readonly webhookId: string,
    readonly messageId: string,
    readonly timestamp: string,
    readonly data: unknown,
    private readonly json: string,
  ) {}

  get body(): string {
    return (this.built ??= webhookBodyFromJson(this.type, new Date(this.timestamp), this.json));
  }
}

/** Decodes a record (throws ValidationError, a PermanentError, when it is not a valid record of its topic). */
export function payloadOf(topic: string, message: KafkaMessage): RecordPayload {
  // Decoded from the text, which then becomes the body's `data` as it is: it was just validated.
  const json = message.value === null ? null : message.value.toString('utf8');
  if (topic === Topics.inbound) {
    const mail = InboundMailContract.decode(json);
    return new Payload(mail.tenant, INBOUND_WEBHOOK_TYPE, mail.id, mail.id, mail.receivedAt, mail, json!);
  }
  const event = EmailEventContract.decode(json);
  return new Payload(event.tenant, webhookTypeOfEvent(event.type), event.eventId, event.messageId, event.at, event, json!);
}

export function deliveriesFor(p: RecordPayload, endpoints: Iterable<WebhookEndpoint>, now: Date): Delivery[] {
  const out: Delivery[] = [];
  const at = now.toISOString();
  for (const e of endpoints) {
    // Events from before the endpoint existed are not its (a replay asks for them explicitly).
    if (!wants(e, p.type) || p.timestamp < e.createdAt) continue;
    out.push({ endpointId: e.id, tenant: p.tenant, webhookId: p.webhookId, type: p.type, messageId: p.messageId, timestamp: p.timestamp, data: p.data, body: p.body, attempt: 0, firstAttemptAt: at });
  }
  return out;
}
