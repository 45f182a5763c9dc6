/**
 * `email.inbound-routes` — which tenant receives the mail of which inbound domain (inbound
 * routes). Compacted, keyed by the domain (lower-case, IDNA ASCII): one tenant per domain. A
 * null value (tombstone) releases the domain. The ingest API writes it (`/v1/inbound-routes`);
 * the inbound service and ingest read it whole into memory.
 */
import { Type, type Static } from '@sinclair/typebox';
import { contract } from './codec.js';

export const INBOUND_ROUTE_VERSION = 1;

/** A local part the route accepts: a lower-case dot-atom. */
export const LOCAL_PART_PATTERN = "^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*$";

export const InboundRouteSchema = Type.Object(
  {
    schemaVersion: Type.Literal(INBOUND_ROUTE_VERSION),
    /** The inbound domain (lower-case, IDNA ASCII); also the record key. */
    domain: Type.String({ minLength: 1, maxLength: 253 }),
    tenant: Type.String({ minLength: 1, maxLength: 128 }),
    /**
     * Only these local parts are accepted (lower-case; `support` also takes `support+tag`);
     * absent: every address at the domain.
     */
    localParts: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 64, pattern: LOCAL_PART_PATTERN }), { minItems: 1, maxItems: 100 })),
    createdAt: Type.String({ format: 'date-time' }),
    updatedAt: Type.String({ format: 'date-time' }),
  },
  { additionalProperties: false },
);

export type InboundRoute = Static<typeof InboundRouteSchema>;
export const InboundRouteContract = contract('InboundRoute', INBOUND_ROUTE_VERSION, InboundRouteSchema);
