/**
 * Provider feedback: when a route relays through an ESP (Amazon SES, SendGrid), the ESP's
 * bounce and complaint notifications arrive as webhooks on the send API (`POST /feedback/ses`,
 * `POST /feedback/sendgrid`) and become the same events as our own bounces. Each endpoint is
 * off until its verification material is configured.
 */
import { Type } from '@sinclair/typebox';
import { bool, int, section, str } from './schema-helpers.js';

export const ESP_PROVIDERS = ['sendgrid'] as const;
export type EspProvider = (typeof ESP_PROVIDERS)[number];

export const DEFAULT_SNS_CERT_HOST_PATTERN = '^sns\\.[a-z0-9-]+\\.amazonaws\\.com(\\.cn)?$';

export const ProviderFeedbackSection = section(
  {
    sesTopicArns: Type.Array(Type.String({ pattern: '^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}$' }), {
      default: [],
      maxItems: 100,
      description:
        'SNS topics whose SES notifications POST /feedback/ses accepts (comma-separated or JSON), e.g. arn:aws:sns:eu-west-1:123456789012:ses-feedback. Messages from any other topic are refused. Empty: the endpoint answers 404.',
    }),
    snsCertHostPattern: str(
      DEFAULT_SNS_CERT_HOST_PATTERN,
      "Regular expression the host (with :port, if any) of an SNS message's SigningCertURL and of a SubscribeURL must match (in full) before Postline fetches it: the guard against making it fetch arbitrary URLs.",
    ),
    snsConfirmSubscriptions: bool(true, 'Confirm an SNS SubscriptionConfirmation for an allowed topic by fetching its SubscribeURL (whose host must match snsCertHostPattern).'),
    snsFetchTimeoutMs: int(5000, 'Timeout of fetching an SNS signing certificate or a SubscribeURL; a notification whose certificate cannot be fetched in time is answered 503 (SNS retries).', 100),
    sendgridPublicKey: str(
      '',
      'Verification key of the SendGrid Event Webhook (Settings → Mail Settings → Event Webhook → Signature Verification), the base64 string SendGrid shows, or PEM. Empty: POST /feedback/sendgrid answers 404.',
    ),
    sendgridMaxAgeSeconds: int(600, 'A SendGrid webhook whose signed timestamp is older (or further in the future) than this is refused as a replay.', 1),
    maxBodyBytes: int(1024 * 1024, 'Largest webhook body accepted (bytes); larger ones get a 413.', 1024),
    publishTimeoutMs: int(10_000, 'How long a webhook waits for its events to be acknowledged by the broker before answering 503 (the provider then retries).', 100),
    // Strings with a pattern rather than literals, so that the variable reads as a comma-separated list (and "" as none).
    espHeaders: Type.Array(Type.String({ pattern: `^(${ESP_PROVIDERS.join('|')})$` }), {
      default: [],
      maxItems: ESP_PROVIDERS.length,
      description:
        'ESPs (comma-separated: sendgrid) that relay routes go through and that need the message reference in their own header: with sendgrid, every message carries X-SMTPAPI unique_args.postline_ref so SendGrid events name it. SES needs nothing (turn on "Include original headers" so X-Postline-Ref comes back).',
    }),
  },
  'Provider feedback (SES via SNS, SendGrid Event Webhook)',
);
