/** Options of the ingest API (`services/ingest`). */
import { Type } from '@sinclair/typebox';
import { section, int, str, bool } from './schema-helpers.js';
import { ScopesSchema } from '../contracts/admin-record.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const HOUR = 3600_000;

/** One tenant's API key, stored only as a digest (`hashApiKey` in shared/http/api-keys.ts). */
export const ApiKeyEntry = Type.Object(
  {
    tenant: Type.String({ minLength: 1, maxLength: 128, pattern: '^[^\\r\\n\\u0000]+$' }),
    keyHash: Type.String({ pattern: '^sha256:[0-9a-f]{64}$', description: '"sha256:" + hex SHA-256 of the key' }),
    /** What the key may do: send, read, admin (default send and read; admin only when listed). */
    scopes: Type.Optional(ScopesSchema),
  },
  { additionalProperties: false },
);

// --- Unsubscribe endpoint (issue 13): /u/<token> on the send API. ---
export const UnsubscribeEndpointSection = section(
  {
    rateLimitMax: int(30, 'Requests to /u/<token> (the one-click unsubscribe endpoint, which needs no API key) per client IP per window, counted by each replica on its own (429 above); 0 turns the limit off.'),
    rateLimitWindowMs: int(60_000, 'Length of the /u/<token> rate-limit window.', 1),
    trustProxyHops: int(
      0,
      'Proxies (ingress, load balancer) in front of the send API that append to X-Forwarded-For: the client IP the /u/<token> limit counts is taken that many hops from the right. 0: the TCP peer (behind a proxy every client would share its address).',
    ),
  },
  'Unsubscribe endpoint',
);
// --- end Unsubscribe endpoint ---

export const IngestSection = section(
  {
    host: str('0.0.0.0', 'Interface the send API listens on.'),
    readApiUrl: str('', 'Base URL of the analytics read API (e.g. http://analytics:8082). When set, GET /v1/messages and /v1/stats on the send API are forwarded there, so clients use one base URL; analytics checks the same API keys. Empty: not forwarded (route them at your ingress instead).'),
    port: int(8080, 'Port of the send API (it also serves /healthz and /readyz; /metrics is on ops.port); 0 picks a free port.'),
    metricsOnApiPort: bool(false, 'Also serve /metrics on the send API port. Off: it is unauthenticated, so by default only the ops server (ops.port) serves it.'),
    apiKeys: Type.Array(ApiKeyEntry, {
      default: [],
      description:
        'API keys as JSON: [{"tenant":"acme","keyHash":"sha256:<hex>"}]. Only digests are stored (hashApiKey in shared/http/api-keys.ts computes one). An entry may name its "scopes" (send, read, admin); without them a key may send and read, and only a key listing "admin" may use /v1/admin.',
    }),
    apiKeysFile: str('', 'A JSON file holding more keys in the same form as apiKeys (e.g. a mounted Kubernetes Secret); empty for none.'),
    produceTimeoutMs: int(10_000, 'How long a request waits for the broker to acknowledge before answering 503.', 1),
    maxBodyBytes: int(2 * MiB, 'Largest body of POST /v1/emails (413 above).', 1024),
    maxBatchBodyBytes: int(16 * MiB, 'Largest body of POST /v1/emails/batch (413 above).', 1024),
    maxMessageBytes: int(
      1_000_000,
      'Largest encoded EmailRequested record (413 above). Keep it below max.message.bytes of email.requested and the dispatch topics (Kafka default: 1 MiB); raise both together.',
      1024,
    ),
    maxAttachmentBytes: int(512 * KiB, 'Largest attachment, decoded (413 above).', 1),
    maxAttachmentsTotalBytes: int(700 * KiB, 'Largest total of one message’s attachments, decoded (413 above).', 1),
    rateLimitMax: int(1000, 'Requests per tenant per window, counted by each replica on its own (429 above); 0 turns the limit off.'),
    rateLimitWindowMs: int(1000, 'Length of the rate-limit window.', 1),
    senderDomains: Type.Record(Type.String({ minLength: 1, maxLength: 128 }), Type.Array(Type.String({ pattern: '^(\\*\\.)?[^\\s@*]+$' }), { maxItems: 1000 }), {
      default: {},
      description:
        'From domains each tenant may use, as JSON: {"acme":["acme.com","*.mail.acme.com"]} ("*." allows subdomains). A tenant not named here may use any domain; a listed tenant sending from another gets a 400 naming "from".',
    }),
    unsubscribe: UnsubscribeEndpointSection,
    idempotencyTtlMs: int(24 * HOUR, 'How long an Idempotency-Key keeps returning the original message id.', 1),
    idempotencyLeaseMs: int(
      60_000,
      'How long a claimed but not yet acknowledged Idempotency-Key is treated as in progress (409) before a retry may complete it. Must exceed produceTimeoutMs.',
      1,
    ),
  },
  'Ingest API',
);
