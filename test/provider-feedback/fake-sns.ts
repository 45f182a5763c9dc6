/**
 * A stand-in for Amazon SNS in tests: an RSA signing key with its X.509 certificate, served over
 * HTTPS on loopback by a host whose certificate the fake internet's CA issued (so the verifier
 * fetches it exactly as from sns.<region>.amazonaws.com), and messages signed with that key the
 * way SNS signs them (SignatureVersion 1: SHA1withRSA, 2: SHA256withRSA, over "Key\nvalue\n"
 * for the message type's keys in order). The host also answers SubscribeURL confirmations and
 * records every request.
 *
 *   const sns = await startFakeSns(ca);      // ca.trustInProcess() makes the global agent trust it
 *   const body = sns.notification(TOPIC, { notificationType: 'Bounce', ... });
 */
import { createSign, randomUUID } from 'node:crypto';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import https from 'node:https';
import type net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import type { CertificateAuthority } from '../helpers/fake-internet/certificates.js';

const run = promisify(execFile);

const NOTIFICATION_KEYS = ['Message', 'MessageId', 'Subject', 'Timestamp', 'TopicArn', 'Type'];
const SUBSCRIPTION_KEYS = ['Message', 'MessageId', 'SubscribeURL', 'Timestamp', 'Token', 'TopicArn', 'Type'];

export const CERT_PATH = '/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem';

export interface FakeSns {
  /** `127.0.0.1:port`: what providerFeedback.snsCertHostPattern must match. */
  host: string;
  /** Paths requested so far (certificate fetches, confirmations). */
  requests: string[];
  /** The signing certificate's URL. */
  certUrl: string;
  /** A signed Notification whose Message is `message` (JSON-encoded unless a string). */
  notification(topicArn: string, message: unknown, opts?: { version?: '1' | '2'; certUrl?: string }): Record<string, string>;
  /** A signed SubscriptionConfirmation whose SubscribeURL points at this host (or `subscribeUrl`). */
  subscriptionConfirmation(topicArn: string, opts?: { subscribeUrl?: string }): Record<string, string>;
  /** Re-signs a message after a test changed it (a forger with another key cannot do this). */
  sign(message: Record<string, string>): Record<string, string>;
  close(): Promise<void>;
}

export async function startFakeSns(ca: CertificateAuthority): Promise<FakeSns> {
  const base = path.join(ca.dir, `sns-${randomUUID()}`);
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${base}.key`, '-out', `${base}.pem`, '-days', '2', '-subj', '/CN=sns.test-region.amazonaws.com']);
  const [signingKey, signingCert] = await Promise.all([readFile(`${base}.key`, 'utf8'), readFile(`${base}.pem`, 'utf8')]);
  const tlsCert = await ca.issue(['127.0.0.1']);
  const requests: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = https.createServer({ key: tlsCert.key, cert: tlsCert.cert }, (req, res) => {
    requests.push(req.url ?? '');
    if (req.url === CERT_PATH) res.writeHead(200, { 'content-type': 'application/x-pem-file' }).end(signingCert);
    else if (req.url?.startsWith('/confirm?')) res.writeHead(200, { 'content-type': 'text/xml' }).end('<ConfirmSubscriptionResponse/>');
    else res.writeHead(404).end();
  });
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const host = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  const certUrl = `https://${host}${CERT_PATH}`;

  const sign = (message: Record<string, string>): Record<string, string> => {
    const keys = message.Type === 'Notification' ? NOTIFICATION_KEYS : SUBSCRIPTION_KEYS;
    const signer = createSign(message.SignatureVersion === '1' ? 'RSA-SHA1' : 'RSA-SHA256');
    for (const k of keys) if (k in message) signer.update(`${k}\n${message[k]}\n`, 'utf8');
    return { ...message, Signature: signer.sign(signingKey, 'base64') };
  };

  return {
    host,
    requests,
    certUrl,
    sign,
    notification: (topicArn, message, opts = {}) =>
      sign({
        Type: 'Notification',
        MessageId: randomUUID(),
        TopicArn: topicArn,
        Message: typeof message === 'string' ? message : JSON.stringify(message),
        Timestamp: new Date().toISOString(),
        SignatureVersion: opts.version ?? '2',
        SigningCertURL: opts.certUrl ?? certUrl,
        UnsubscribeURL: `https://${host}/unsubscribe`,
      }),
    subscriptionConfirmation: (topicArn, opts = {}) => {
      const token = randomUUID().replaceAll('-', '');
      return sign({
        Type: 'SubscriptionConfirmation',
        MessageId: randomUUID(),
        Token: token,
        TopicArn: topicArn,
        Message: `You have chosen to subscribe to the topic ${topicArn}.`,
        SubscribeURL: opts.subscribeUrl ?? `https://${host}/confirm?Action=ConfirmSubscription&Token=${token}`,
        Timestamp: new Date().toISOString(),
        SignatureVersion: '2',
        SigningCertURL: certUrl,
      });
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
