import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { loadPostlineConfig } from '../../shared/config.js';
import { ConfigError } from '../../shared/config-loader.js';
import { FeedbackKeyring } from '../../shared/feedback/feedback-token.js';
import { providerFeedbackSetup } from './provider-feedback-setup.js';
import { SnsMessageRejected } from './sns-verifier.js';

const keyring = new FeedbackKeyring([{ id: 1, secret: 's'.repeat(40) }]);
const config = (env: Record<string, string>) => loadPostlineConfig({ env }).providerFeedback;
const sendgridKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ type: 'spki', format: 'der' }).toString('base64');

test('nothing configured: no routes; each provider on when its material is configured', () => {
  assert.equal(providerFeedbackSetup(config({}), keyring), undefined);
  const ses = providerFeedbackSetup(config({ POSTLINE_PROVIDER_FEEDBACK_SES_TOPIC_ARNS: 'arn:aws:sns:eu-west-1:123456789012:ses' }), keyring);
  assert.ok(ses?.sns && !ses.sendgrid);
  const sg = providerFeedbackSetup(config({ POSTLINE_PROVIDER_FEEDBACK_SENDGRID_PUBLIC_KEY: sendgridKey }), keyring);
  assert.ok(sg?.sendgrid && !sg.sns);
});

test('bad material fails start-up naming every bad option', () => {
  const bad = config({
    POSTLINE_PROVIDER_FEEDBACK_SES_TOPIC_ARNS: 'arn:aws:sns:eu-west-1:123456789012:ses',
    POSTLINE_PROVIDER_FEEDBACK_SNS_CERT_HOST_PATTERN: '(unclosed',
    POSTLINE_PROVIDER_FEEDBACK_SENDGRID_PUBLIC_KEY: 'bm90IGEga2V5',
  });
  assert.throws(
    () => providerFeedbackSetup(bad, new FeedbackKeyring([])),
    (err: unknown) => err instanceof ConfigError && err.problems.length === 3 && err.problems.every((p) => /SNS_CERT_HOST_PATTERN|SENDGRID_PUBLIC_KEY|feedback\.keys/.test(p)),
  );
});

test('the SNS host pattern is matched in full, even when written without anchors', async () => {
  const topic = 'arn:aws:sns:eu-west-1:123456789012:ses';
  const setup = providerFeedbackSetup(config({ POSTLINE_PROVIDER_FEEDBACK_SES_TOPIC_ARNS: topic, POSTLINE_PROVIDER_FEEDBACK_SNS_CERT_HOST_PATTERN: 'sns\\.[a-z0-9-]+\\.amazonaws\\.com' }), keyring);
  for (const host of ['sns.eu-west-1.amazonaws.com.evil.test', 'evil-sns.eu-west-1.amazonaws.com']) {
    await assert.rejects(
      setup!.sns!.verify({ Type: 'Notification', TopicArn: topic, SigningCertURL: `https://${host}/SimpleNotificationService-x.pem` }),
      (err: unknown) => err instanceof SnsMessageRejected && err.outcome === 'bad-url',
      host,
    );
  }
});
