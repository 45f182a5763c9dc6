/**
 * Options of open and click tracking: the tracker service (`services/tracker`) and the
 * renderer's link rewriting (`services/renderer/tracking-rewrite.ts`). Links are signed with the
 * feedback keys (`feedback.keys`), so tracking needs one too.
 */
import { Type } from '@sinclair/typebox';
import { section, bool, int, str } from './schema-helpers.js';

const TrackDefaults = Type.Object(
  { opens: Type.Optional(Type.Boolean()), clicks: Type.Optional(Type.Boolean()) },
  { additionalProperties: false },
);

export const TrackingSection = section(
  {
    host: str('0.0.0.0', 'Interface the tracker (postline tracker) listens on.'),
    port: int(8083, 'HTTP port of the tracker: the open pixel (GET /o/<token>.gif) and click redirects (GET /c/<token>?u=<url>); 0 picks a free port.'),
    baseUrl: str(
      '',
      'Public base URL of the tracker that rewritten links and the open pixel point at, e.g. https://t.example.com. Empty: the renderer tracks nothing (npm start sets it to the local tracker).',
    ),
    domains: Type.Record(Type.String({ minLength: 1, maxLength: 128 }), Type.String({ minLength: 1 }), {
      default: {},
      description: 'Per-tenant custom tracking domain (base URL), as JSON: {"acme":"https://click.acme.com"}; its DNS must point at the tracker. A tenant not named here uses baseUrl.',
    }),
    opens: bool(false, 'Track opens (add the pixel) unless the tenant (tenants) or the request ("track": {"opens": false}) says otherwise.'),
    clicks: bool(false, 'Track clicks (rewrite links) unless the tenant (tenants) or the request ("track": {"clicks": false}) says otherwise.'),
    tenants: Type.Record(Type.String({ minLength: 1, maxLength: 128 }), TrackDefaults, {
      default: {},
      description: 'Per-tenant defaults replacing opens/clicks, as JSON: {"acme":{"opens":true,"clicks":true}}. A request\'s "track" overrides them.',
    }),
    trustProxyHops: int(0, 'Proxies (ingress, load balancer) in front of the tracker that append to X-Forwarded-For: the client address is taken that many hops from the right. 0: the TCP peer.'),
    machineWithinSeconds: int(
      2,
      'An open or click sooner than this many seconds after the message was accepted (or its sendAt) is flagged machine (too-soon): scanners fetch on delivery. 0 turns the rule off.',
    ),
    clickBurstMs: int(1000, 'A click on another link of the same copy within this many milliseconds of the previous click is flagged machine (click-burst: scanners follow every link). 0 turns it off.'),
    appleProxyCidrs: Type.Array(Type.String({ minLength: 1 }), {
      default: ['17.0.0.0/8'],
      description: 'Address ranges of Apple Mail Privacy Protection’s image proxy: opens from them are flagged machine (apple-mpp). Comma-separated or JSON.',
    }),
    firstSeenEntries: int(200_000, 'Opens and clicks each replica remembers (an LRU) to flag the first open of a copy and the first click of a link (engagement.first); older ones are forgotten.', 1),
    queueMax: int(100_000, 'Events waiting for Kafka at most; more are dropped and counted (postline_tracker_events_dropped_total). Responses never wait for Kafka.', 1),
    publishConcurrency: int(2_000, 'Events handed to the producer at once (the producer batches them).', 1),
  },
  'Tracking (open pixel, click redirects)',
);
