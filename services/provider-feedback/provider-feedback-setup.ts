/**
 * Builds the webhooks' dependencies from config (called by the send API's main.ts): the SNS
 * verifier when SES topics are configured, the SendGrid verifier when its key is. Bad values
 * (an invalid host pattern, a key that is not a key) fail start-up with a ConfigError.
 */
import { EventEmitter } from 'node:events';
import type { Registry } from 'prom-client';
import type { PostlineConfig } from '../../shared/config.js';
import { EventPublisher } from '../../shared/events.js';
import type { BatchingProducer } from '../../shared/kafka/batching-producer.js';
import { instrumentProviderFeedback } from './provider-feedback-metrics.js';
import { ConfigError } from '../../shared/config-loader.js';
import type { FeedbackKeyring } from '../../shared/feedback/feedback-token.js';
import { classifyBounce } from '../../shared/bounces/classify.js';
import type { ProviderFeedbackDeps } from './provider-feedback-routes.js';
import { SendgridVerifier } from './sendgrid-verifier.js';
import { SnsVerifier } from './sns-verifier.js';

/** Everything but where events go; main.ts adds `publish` and `observer` once Kafka is up. */
export type ProviderFeedbackSetup = Omit<ProviderFeedbackDeps, 'publish' | 'observer'>;

/** The verifiers and limits, or undefined when neither provider is configured (the routes are then absent: 404). */
export function providerFeedbackSetup(config: PostlineConfig['providerFeedback'], keyring: FeedbackKeyring): ProviderFeedbackSetup | undefined {
  const errors: string[] = [];
  let sns: SnsVerifier | undefined;
  let sendgrid: SendgridVerifier | undefined;
  if (config.sesTopicArns.length > 0) {
    // Matched in full whatever the pattern says: an unanchored pattern must not let sns.x.amazonaws.com.evil.test through.
    try {
      sns = new SnsVerifier({ topicArns: config.sesTopicArns, hostPattern: new RegExp(`^(?:${config.snsCertHostPattern})$`), timeoutMs: config.snsFetchTimeoutMs });
    } catch (err) {
      errors.push(`POSTLINE_PROVIDER_FEEDBACK_SNS_CERT_HOST_PATTERN (providerFeedback.snsCertHostPattern): ${(err as Error).message}`);
    }
  }
  if (config.sendgridPublicKey) {
    try {
      sendgrid = new SendgridVerifier(config.sendgridPublicKey, config.sendgridMaxAgeSeconds);
    } catch {
      errors.push('POSTLINE_PROVIDER_FEEDBACK_SENDGRID_PUBLIC_KEY (providerFeedback.sendgridPublicKey): not an ECDSA public key (base64 DER or PEM)');
    }
  }
  if ((config.sesTopicArns.length > 0 || config.sendgridPublicKey) && !keyring.enabled) errors.push('providerFeedback needs feedback.keys: without them no X-Postline-Ref can be verified');
  if (errors.length) throw new ConfigError(errors);
  if (!sns && !sendgrid) return undefined;
  return {
    keyring,
    classify: classifyBounce,
    sns,
    sendgrid,
    confirmSubscriptions: config.snsConfirmSubscriptions,
    maxBodyBytes: config.maxBodyBytes,
    publishTimeoutMs: config.publishTimeoutMs,
  };
}

/** The full deps once Kafka is up: events are published as stage `provider-feedback`, outcomes counted in `postline_provider_feedback_total`. */
export function wireProviderFeedback(setup: ProviderFeedbackSetup, producer: BatchingProducer, registry: Registry): ProviderFeedbackDeps {
  const events = new EventPublisher(producer, 'provider-feedback');
  const observer = new EventEmitter();
  instrumentProviderFeedback(observer, registry);
  return { ...setup, publish: (event) => events.publish(event), observer };
}
