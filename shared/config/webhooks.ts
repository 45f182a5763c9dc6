/**
 * Webhooks to customers (`postline webhooks`): who may be called (SSRF guard), how long a call
 * may take, how retries, breakers and disabling behave, and how much delivery log is kept.
 */
import { Type } from '@sinclair/typebox';
import { section, bool, int, str } from './schema-helpers.js';

export const WebhooksSection = section(
  {
    groupId: str('postline-webhooks', 'Consumer group of the webhooks service on email.events and email.inbound.'),
    retryGroupId: str('postline-webhooks-retry', 'Consumer group of the webhooks service on its retry tiers (email.webhooks.retry.<tier>).'),
    allowPrivate: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description:
        'Addresses webhook URLs may resolve to although they are private, loopback, link-local, CGNAT, multicast or unspecified: CIDRs (10.0.0.0/8, 127.0.0.1/32, fd00::/8) or host names (comma-separated). Empty: only public addresses.',
    }),
    allowHttp: bool(false, 'Accept http:// endpoint URLs (default: https only).'),
    timeoutMs: int(10_000, 'Longest an endpoint may take to answer with its response headers once the request is sent, and longest pause while its body arrives.', 100),
    connectTimeoutMs: int(5_000, 'Longest connecting (TCP and TLS) to an endpoint may take.', 100),
    maxResponseBytes: int(64 * 1024, 'Largest response body read from an endpoint; a larger one fails the attempt.', 1),
    concurrency: int(512, 'Deliveries in flight at once across all endpoints (one service process).', 1),
    endpointConcurrency: int(32, 'Deliveries in flight at once to one endpoint.', 1),
    endpointQueue: int(2_000, 'Deliveries waiting for one endpoint in memory; past it (or with its breaker open) they go to the first retry tier, so a slow endpoint never holds up another.', 1),
    breakerErrorPercent: int(50, 'Failure percentage over the breaker window that opens an endpoint’s breaker.', 1),
    breakerVolume: int(10, 'Attempts an endpoint’s breaker needs in its window before it may open.', 1),
    breakerResetMs: int(30_000, 'How long an open breaker waits before letting one trial delivery through.', 100),
    disableAfterMs: int(
      3 * 24 * 3600_000,
      'An endpoint that has failed every attempt for this long is disabled (a disabled event, ops scope webhook, and postline_webhook_endpoints_disabled_total); PATCH {"enabled":true} switches it back on.',
      1000,
    ),
    secretOverlapMs: int(24 * 3600_000, 'After POST /v1/webhooks/:id/rotate, how long the old secret keeps signing beside the new one.', 0),
    maxEndpointsPerTenant: int(50, 'Most webhook endpoints one tenant may have.', 1),
    deliveryLogSize: int(500, 'Delivery attempts kept per endpoint for GET /v1/webhooks/:id/deliveries (newest first; older ones are dropped).', 1),
    replayMaxRecords: int(1_000_000, 'Most email.events records one replay reads.', 1),
  },
  'Webhooks to customers (signing, delivery, retries, SSRF guard, delivery log)',
);
