/**
 * Verifying SendGrid Event Webhook requests with SendGrid's own `@sendgrid/eventwebhook`
 * (ECDSA P-256 over timestamp + raw body). A timestamp outside the allowed age is refused
 * before the signature is checked: a captured request cannot be replayed later.
 */
import { EventWebhook } from '@sendgrid/eventwebhook';
import { PermanentError } from '../../shared/errors.js';

export const SIGNATURE_HEADER = 'x-twilio-email-event-webhook-signature';
export const TIMESTAMP_HEADER = 'x-twilio-email-event-webhook-timestamp';

export class SendgridRequestRejected extends PermanentError {
  constructor(
    readonly outcome: 'bad-signature' | 'stale',
    message: string,
  ) {
    super('SENDGRID_REQUEST_REJECTED', message);
  }
}

type EcPublicKey = ReturnType<EventWebhook['convertPublicKeyToECDSA']>;

export class SendgridVerifier {
  private readonly webhook = new EventWebhook();
  private readonly key: EcPublicKey;

  /** `publicKey`: the base64 key SendGrid shows (DER), or PEM. Throws when it is not a key. */
  constructor(
    publicKey: string,
    private readonly maxAgeSeconds: number,
    private readonly now: () => number = Date.now,
  ) {
    const pem = publicKey.includes('-----BEGIN') ? publicKey : `-----BEGIN PUBLIC KEY-----\n${publicKey.trim()}\n-----END PUBLIC KEY-----`;
    this.key = this.webhook.convertPublicKeyToECDSA(pem);
  }

  /** Throws SendgridRequestRejected unless `body` is signed, at a time within the allowed age. */
  verify(body: Buffer, signature: string | undefined, timestamp: string | undefined): void {
    if (!signature || !timestamp || !/^\d{1,12}$/.test(timestamp)) throw new SendgridRequestRejected('bad-signature', 'missing or malformed signature headers');
    if (Math.abs(this.now() / 1000 - Number(timestamp)) > this.maxAgeSeconds) throw new SendgridRequestRejected('stale', `the signed timestamp is more than ${this.maxAgeSeconds}s away`);
    let ok = false;
    try {
      ok = this.webhook.verifySignature(this.key, body, signature, timestamp);
    } catch {
      ok = false; // an undecodable signature
    }
    if (!ok) throw new SendgridRequestRejected('bad-signature', 'the signature does not verify');
  }
}
