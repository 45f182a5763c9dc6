/** Options of the inbound SMTP service for bounces, complaints and mailto unsubscribes (`services/inbound`). */
import { Type } from '@sinclair/typebox';
import { section, int, str } from './schema-helpers.js';

const MiB = 1024 * 1024;

export const InboundSection = section(
  {
    host: str('0.0.0.0', 'Interface the inbound SMTP service listens on.'),
    port: int(2525, 'SMTP port of the inbound service (the bounce domain’s MX points here; Kubernetes maps port 25 to it); 0 picks a free port.'),
    hostname: str('', 'Name the service greets with (EHLO banner); empty: the machine’s host name.'),
    maxMessageBytes: int(2 * MiB, 'Largest message accepted (552 above; the rest of it is read and thrown away, never held).', 1024),
    maxConnections: int(100, 'Simultaneous SMTP connections; more are refused with 421.', 1),
    rateLimitMax: int(120, 'Messages (MAIL FROM) one client IP may start per window (421 above, the sender retries later); 0 turns the limit off.'),
    rateLimitWindowSeconds: int(60, 'Length of the per-client-IP rate-limit window, in seconds.', 1),
    complaintAddresses: Type.Array(Type.String({ minLength: 1, maxLength: 64 }), {
      default: ['fbl', 'abuse'],
      description:
        'Local parts at feedback.returnPathDomain that accept complaint reports (ARF) from mailbox providers’ feedback loops, e.g. fbl@bounces.example.com: register that address with each provider’s FBL. Comma-separated or JSON.',
    }),
    publishTimeoutMs: int(10_000, 'How long the end of DATA waits for the broker to acknowledge the events before answering 451 (the sender retries).', 1),
    tlsKeyFile: str('', 'PEM private key for STARTTLS; empty (with tlsCertFile empty): STARTTLS is not offered.'),
    tlsCertFile: str('', 'PEM certificate chain for STARTTLS.'),
  },
  'Inbound SMTP (bounces, complaints, mailto unsubscribes)',
);

/** Options of inbound routes: mail to tenants' inbound domains, parsed into `email.inbound` records (`services/inbound`). */
export const InboundRoutesSection = section(
  {
    maxTextBytes: int(1 * MiB, 'Most bytes (UTF-8) of the text and of the HTML body kept in an inbound mail record; longer ones are cut (`truncated.text` / `truncated.html`).', 1024),
    maxAttachmentBytes: int(5 * MiB, 'Largest attachment whose content is inlined (base64) in an inbound mail record; a larger one keeps only its metadata (`truncated.attachments`).', 0),
    maxAttachmentsTotalBytes: int(10 * MiB, 'Most attachment bytes inlined in one record, in message order; the attachments past it keep only their metadata.', 0),
    maxHeaderBytes: int(256 * 1024, 'Largest header block of one MIME part; a message with a larger one is refused (550 5.6.0).', 1024),
    maxParts: int(1000, 'Most MIME parts one message may have; a message with more is refused (550 5.6.0).', 1),
    authTimeoutMs: int(10_000, 'How long the SPF, DKIM and DMARC checks (DNS lookups) of one message may take; past it the verdicts are `temperror` and the mail is still delivered.', 1),
    dnsServers: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description: 'DNS servers (`host` or `host:port`) for the SPF, DKIM and DMARC lookups; empty: the system’s resolvers. Comma-separated or JSON.',
    }),
  },
  'Inbound routes (mail to tenants’ inbound domains)',
);
