/** EmailRequested fixtures for the renderer's unit and integration tests. */
import { randomUUID } from 'node:crypto';
import { EMAIL_REQUESTED_VERSION, type EmailRequested } from '../../shared/contracts/email-requested.js';

/** A valid request (one recipient, html + text) with `overrides` applied. */
export function emailRequest(overrides: Partial<EmailRequested> = {}): EmailRequested {
  return {
    schemaVersion: EMAIL_REQUESTED_VERSION,
    messageId: randomUUID(),
    tenant: 'acme',
    acceptedAt: '2026-03-01T12:00:00.000Z',
    priority: 'transactional',
    from: { email: 'noreply@shop.example', name: 'Shop' },
    to: [{ email: 'alice@example.org', name: 'Alice' }],
    subject: 'Your order',
    html: '<p>Thanks for your order.</p>',
    text: 'Thanks for your order.',
    ...overrides,
  };
}
