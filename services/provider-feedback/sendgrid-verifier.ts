/**
 * Verifying SendGrid Event Webhook requests: ECDSA P-256 with SHA-256 over timestamp + raw body,
 * the signature DER-encoded in base64 — SendGrid's documented scheme, checked with Node's own
 * crypto (OpenSSL). SendGrid's `@sendgrid/eventwebhook` does the same in pure JavaScript
 * (starkbank-ecdsa) at 13–22 ms of CPU per check on a 2-core machine, so a flood of forged
 * signatures could occupy a core at ~60 requests/s; OpenSSL takes a fraction of a millisecond.
 * The official package stays a dev dependency: a test checks both agree on the same requests.
 * A timestamp outside the allowed age is refused before the signature is checked: a captured
 * request cannot be replayed later.
 */
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
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

export class SendgridVerifier {
  private readonly key: KeyObject;

  /** `publicKey`: the base64 key SendGrid shows (DER, SubjectPublicKeyInfo), or PEM. Throws when it is not a P-256 key. */
  constructor(
    publicKey: string,
    private readonly maxAgeSeconds: number,
    private readonly now: () => number = Date.now,
  ) {
    const pem = publicKey.includes('-----BEGIN') ? publicKey : `-----BEGIN PUBLIC KEY-----\n${publicKey.trim()}\n-----END PUBLIC KEY-----`;
    this.key = createPublicKey(pem);
    if (this.key.asymmetricKeyType !== 'ec' || this.key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') throw new Error('the SendGrid verification key is not an ECDSA P-256 public key');
  }

  /** Throws SendgridRequestRejected unless `body` is signed, at a time within the allowed age. */
  verify(body: Buffer, signature: string | undefined, timestamp: string | undefined): void {
    if (!signature || !timestamp || !/^\d{1,12}$/.test(timestamp)) throw new SendgridRequestRejected('bad-signature', 'missing or malformed signature headers');
    if (Math.abs(this.now() / 1000 - Number(timestamp)) > this.maxAgeSeconds) throw new SendgridRequestRejected('stale', `the signed timestamp is more than ${this.maxAgeSeconds}s away`);
    let ok = false;
    try {
      ok = verify('sha256', Buffer.concat([Buffer.from(timestamp), body]), { key: this.key, dsaEncoding: 'der' }, Buffer.from(signature, 'base64'));
    } catch {
      ok = false; // an undecodable signature
    }
    if (!ok) throw new SendgridRequestRejected('bad-signature', 'the signature does not verify');
  }
}
