/**
 * Verifying SNS messages and confirming subscriptions. The signature check (SignatureVersion 1,
 * SHA1withRSA, and 2, SHA256withRSA, over SNS's canonical string, with the certificate fetched
 * from SigningCertURL) is AWS's own `sns-validator`; around it this module adds what it lacks:
 * the topic allow-list first (no fetch at all for a topic we do not know), a time limit on the
 * certificate fetch, and the same host guard for SubscribeURL before Postline fetches it.
 */
import https from 'node:https';
import MessageValidator from 'sns-validator';
import { PermanentError } from '../../shared/errors.js';
import { Unavailable } from '../../shared/http/errors.js';

/** A message that is not a genuine SNS message for us: answered 4xx so SNS does not retry it. */
export class SnsMessageRejected extends PermanentError {
  constructor(
    readonly outcome: 'bad-signature' | 'bad-topic' | 'bad-url',
    message: string,
    cause?: unknown,
  ) {
    super('SNS_MESSAGE_REJECTED', message, { cause });
  }
}

export interface SnsVerifierOptions {
  topicArns: readonly string[];
  /** Host (with `:port` when present) of SigningCertURL and SubscribeURL. */
  hostPattern: RegExp;
  timeoutMs: number;
}

export type SnsMessage = Record<string, string>;

export class SnsVerifier {
  private readonly validator: MessageValidator;
  private readonly topics: ReadonlySet<string>;

  constructor(private readonly opts: SnsVerifierOptions) {
    this.validator = new MessageValidator(opts.hostPattern);
    this.topics = new Set(opts.topicArns);
  }

  /** Resolves with the message when it is signed by SNS for an allowed topic; SnsMessageRejected or Unavailable otherwise. */
  async verify(body: unknown): Promise<SnsMessage> {
    if (!body || typeof body !== 'object' || Array.isArray(body)) throw new SnsMessageRejected('bad-signature', 'not an SNS message');
    const message = body as Record<string, unknown>;
    if (typeof message.TopicArn !== 'string' || !this.topics.has(message.TopicArn)) throw new SnsMessageRejected('bad-topic', 'TopicArn is not one of providerFeedback.sesTopicArns');
    if (!this.allowedUrl(message.SigningCertURL)) throw new SnsMessageRejected('bad-url', 'SigningCertURL is not an https URL on an allowed host');
    return this.within(
      new Promise<SnsMessage>((resolve, reject) => {
        this.validator.validate({ ...message }, (err) => {
          if (!err) resolve(message as SnsMessage);
          // A socket error fetching the certificate is worth a retry; anything else is the message's fault.
          else if (typeof (err as NodeJS.ErrnoException).code === 'string') reject(new Unavailable('the SNS signing certificate could not be fetched', err));
          else reject(new SnsMessageRejected('bad-signature', 'the SNS signature does not verify', err));
        });
      }),
      'verifying the SNS signature',
    );
  }

  /** Confirms a (verified) SubscriptionConfirmation by fetching its SubscribeURL. */
  async confirm(message: SnsMessage): Promise<void> {
    const url = message.SubscribeURL;
    if (!this.allowedUrl(url, false)) throw new SnsMessageRejected('bad-url', 'SubscribeURL is not an https URL on an allowed host');
    const status = await this.within(
      new Promise<number>((resolve, reject) => {
        const req = https.get(url, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
          res.on('error', reject);
        });
        req.setTimeout(this.opts.timeoutMs, () => req.destroy(new Error('timed out')));
        req.on('error', reject);
      }).catch((err: unknown) => {
        throw new Unavailable('the SNS SubscribeURL could not be fetched', err);
      }),
      'confirming the SNS subscription',
    );
    if (status !== 200) throw new Unavailable(`the SNS SubscribeURL answered ${status}`);
  }

  private allowedUrl(value: unknown, pem = true): value is string {
    if (typeof value !== 'string') return false;
    try {
      const url = new URL(value);
      return url.protocol === 'https:' && !url.username && !url.password && this.opts.hostPattern.test(url.host) && (!pem || url.pathname.endsWith('.pem'));
    } catch {
      return false;
    }
  }

  private within<T>(p: Promise<T>, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Unavailable(`timed out ${what}`)), this.opts.timeoutMs);
    });
    return Promise.race([p, expired]).finally(() => clearTimeout(timer));
  }
}
