/** A scheduled send request as ingest would park it, for the schedule tests. */
import type { EmailRequested } from '../../shared/contracts/email-requested.js';

export function scheduledRequest(id: string, sendAt: number, tenant = 'acme'): EmailRequested {
  return {
    schemaVersion: 1,
    messageId: id,
    tenant,
    acceptedAt: new Date().toISOString(),
    priority: 'transactional',
    from: { email: 'a@acme.test' },
    to: [{ email: 'b@example.org' }],
    subject: 'later',
    text: 'hello',
    sendAt: new Date(sendAt).toISOString(),
  };
}
