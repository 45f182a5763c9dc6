/** Options of the SMTP submission gateway (`services/smtp-gateway`). */
import { section, int, str } from './schema-helpers.js';

const MiB = 1024 * 1024;

export const SmtpGatewaySection = section(
  {
    host: str('0.0.0.0', 'Interface the SMTP gateway listens on.'),
    submissionPort: int(587, 'Submission port with STARTTLS (required before AUTH); 0 picks a free port.'),
    submissionsPort: int(465, 'Submission port with implicit TLS (RFC 8314); 0 picks a free port.'),
    hostname: str('', 'Name the gateway greets with (EHLO banner); empty: the machine’s host name.'),
    tlsKeyFile: str('', 'PEM private key of the gateway’s certificate (required: AUTH only happens over TLS).'),
    tlsCertFile: str('', 'PEM certificate chain of the gateway.'),
    maxMessageBytes: int(10 * MiB, 'Largest message accepted, advertised with SIZE (552 above; the rest of it is read and thrown away, never held). At most renderer.maxMessageBytes.', 1024),
    maxConnections: int(200, 'Simultaneous SMTP connections per port; more are refused with 421.', 1),
    rateLimitMax: int(100, 'Messages one tenant may submit per window, counted by each replica on its own (451 4.7.1 above, the client retries later); 0 turns the limit off.'),
    rateLimitWindowSeconds: int(1, 'Length of the per-tenant rate-limit window, in seconds.', 1),
    authFailureMax: int(10, 'Failed AUTH attempts one client IP may make per window; after that the IP is refused (421 at connect, 454 at AUTH) until the window ends. 0 turns the limit off.'),
    authFailureWindowSeconds: int(300, 'Length of the per-IP AUTH failure window, in seconds.', 1),
    produceTimeoutMs: int(10_000, 'How long the end of DATA waits for the broker to acknowledge the request before answering 451 (the client retries).', 1),
  },
  'SMTP submission gateway',
);
