/** Options of the dispatcher (`services/dispatcher`). */
import { Type } from '@sinclair/typebox';
import { section, int, num, str, bool } from './schema-helpers.js';

/** The smarthost every message leaves through (direct-to-MX routing comes later). */
export const RelaySection = section(
  {
    host: str('', 'Relay (smarthost) host name or address. Required by `postline dispatcher`; `npm start` points it at its local capture server when empty.'),
    port: int(587, 'Relay port (587 submission with STARTTLS, 465 implicit TLS, 25 plain relay).', 1),
    secure: bool(false, 'Implicit TLS from the first byte (port 465). Otherwise STARTTLS is used when the relay offers it.'),
    requireTLS: bool(false, 'Refuse to send unless the relay upgrades with STARTTLS.'),
    ignoreTLS: bool(false, 'Never use STARTTLS even when offered (trusted local relays only).'),
    tlsRejectUnauthorized: bool(true, 'Verify the relay certificate; turn off only for a relay with a self-signed certificate on a trusted network.'),
    user: str('', 'SMTP AUTH user; empty for none.'),
    password: str('', 'SMTP AUTH password. Never logged.'),
    fallbackHosts: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description: 'Fallback relays as host or host:port (comma-separated), tried in order when the primary cannot be reached. Same TLS and auth settings as the primary.',
    }),
    clientName: str('', 'Name sent with EHLO; empty for the machine host name.'),
  },
  'SMTP relay',
);

/** Per-destination-host fleets of persistent SMTP connections. */
export const FleetSection = section(
  {
    warmConnections: int(2, 'Connections opened to each relay host at start and kept open while idle.'),
    maxConnectionsPerHost: int(20, 'Most connections open to one destination host.', 1),
    reserveCritical: int(4, 'Connections of a fleet that transactional and bulk mail may not take, kept for critical mail.'),
    reserveTransactional: int(2, 'Further connections that bulk mail may not take, kept for transactional (and critical) mail.'),
    idleTimeoutMs: int(60_000, 'An idle connection above the warm count is closed (QUIT) after this long.', 1),
    ceilingCooldownMs: int(60_000, 'After a host refuses a connection or answers 421, the fleet stays at the size it had for this long before trying to grow again.', 1),
    acquireTimeoutMs: int(30_000, 'Longest a message waits for a free connection before it is deferred to the retry path.', 1),
  },
  'SMTP connection fleets',
);

/** One circuit breaker per destination host (opossum): no new connections to a host that keeps failing. */
export const BreakerSection = section(
  {
    failureThreshold: int(5, 'Connection failures to one host within dispatcher.breaker.windowMs that open its circuit breaker. While open no new connection to the host is attempted and mail goes to the next host of the route (or, with none left, to the retry tiers).', 1),
    windowMs: int(10_000, 'Rolling window in which connection failures to a host are counted.', 100),
    halfOpenAfterMs: int(5_000, 'How long a breaker stays open before one probe connection is tried (half-open): success closes it, failure opens it again for as long.', 1),
  },
  'Circuit breakers per SMTP host',
);

/** Remembering recently handled deliveries, so a redelivered dispatch record is not sent twice. */
export const DedupeSection = section(
  {
    maxEntries: int(200_000, 'Recipients of recently handled dispatch records (message id, attempt, recipient) kept in memory; a redelivered record (crash, rebalance, a stage producing it twice) skips the recipients it lists. 0 turns deduplication off.'),
    seedWindowMs: int(120_000, 'At start, delivery outcomes published to email.events within this window are read back and remembered, which covers a dispatcher killed between a send and its offset commit. Must exceed the longest time a finished record can stay uncommitted; 0 skips it.'),
    seedTimeoutMs: int(30_000, 'Longest the start-up read of email.events may take; past it the dispatcher starts with what it has read (and says so).', 1),
  },
  'Duplicate suppression',
);

// --- shaping (helper "shape"): traffic shaping, warm-up, auto-pause (services/dispatcher/shaping) ---

/** Bounds and adaptive back-off of traffic shaping per (source address, site). */
export const ShapingSection = section(
  {
    maxWaitMs: int(5_000, 'Longest a message waits in memory for a send token of its (source address, site); one that would wait longer is deferred (SHAPING_DEFERRED) to the shortest retry tier.', 1),
    maxWaiting: int(1_000, 'Messages that may wait for send tokens of one (source address, site) at once; more are deferred (SHAPING_DEFERRED) to the shortest retry tier.', 1),
    burstMs: int(100, 'Tokens a bucket may save up, in milliseconds of its rate (at least one token): rates are paced evenly, bursts stay this short.', 1),
    throttleFactor: num(0.5, 'A throttling reply multiplies the (source address, site) rate and connection limits by this (never below minFactor).', 0.01),
    minFactor: num(0.0625, 'The lowest share of the rule throttling replies can bring a (source address, site) to.', 0.001),
    throttleHoldMs: int(1_000, 'Throttling replies within this long of the last lowering extend the cool-down but do not lower again (one burst of 421s is one signal).', 0),
    cooldownMs: int(300_000, 'After the last throttling reply, how long a (source address, site) stays lowered before it starts to recover.', 1),
    recoverStepMs: int(60_000, 'Once cooled down, the limits are doubled again every this long until they are back at the rule.', 1),
    pauseWindowMs: int(3_600_000, 'Sliding window of delivery outcomes per source address (and pool) for auto-pause.', 1_000),
    pauseMinSample: int(200, 'Outcomes (sent + bounced) a source address needs in the window before its bounce rate can pause it.', 1),
    pauseBounceRate: num(0.05, 'Share of recipient-class bounces (unknown or disabled mailbox) in the window above which a source address (or pool) is paused.', 0),
    pauseCooldownMs: int(3_600_000, 'A paused source address (or pool) resumes by itself after this long; POST /v1/sources/<address>/resume resumes it at once.', 1),
    // --- sender pauses (helper "pause", issue 13): a tenant's sending domain ---
    senderWindowMs: int(86_400_000, 'Sliding window of delivery outcomes and complaints per sending domain (tenant + From domain) for its automatic pause.', 1_000),
    senderMinSample: int(1_000, 'Messages a sending domain needs in the window before its hard-bounce or complaint rate can pause it.', 1),
    senderBounceRate: num(0.05, 'Share of recipient-class hard bounces in the window above which a sending domain is paused (its mail deferred with SENDER_PAUSED).', 0),
    senderComplaintRate: num(0.003, 'Share of complaints (complained events) in the window above which a sending domain is paused.', 0),
    pauseComplaintRate: num(0.003, 'Share of complaints whose ARF report names a source address (Source-IP) among the messages that address (or its pool) sent, over the sending-domain window and minimum sample (senderWindowMs, senderMinSample), above which the address (or pool) is paused for pauseCooldownMs.', 0),
    senderCooldownMs: int(21_600_000, 'A paused sending domain resumes by itself after this long; POST /v1/senders/<tenant>/<domain>/resume resumes it at once.', 1),
  },
  'Traffic shaping, warm-up and auto-pause',
);
// --- end shaping ---

const MiB = 1024 * 1024;

export const DispatcherSection = section(
  {
    concurrencyCritical: int(50, 'Messages from email.dispatch.critical being sent over SMTP at once; as many more may wait for their outcome to be recorded durably.', 1),
    concurrencyTransactional: int(20, 'Messages from email.dispatch.transactional being sent over SMTP at once; as many more may wait for their outcome to be recorded durably.', 1),
    concurrencyBulk: int(10, 'Messages from email.dispatch.bulk being sent over SMTP at once; as many more may wait for their outcome to be recorded durably.', 1),
    maxInFlightBytes: int(32 * MiB, 'Per priority: sum of the sizes of the dispatch records in flight at once, bounding memory when messages are large; a larger record is sent alone.', 1024),
    groupId: str('postline-dispatcher', 'Consumer group prefix; each priority consumes as <groupId>-<priority>.'),
    bulkYieldMs: int(250, 'While critical messages are being sent, a bulk message waits up to this long before it starts (the dispatcher\'s CPU goes to critical mail first); 0 turns it off.'),
    commitIntervalMs: int(100, 'Longest finished records wait for their offset commit while their batch goes on. Short keeps the window in which a crash makes a sent record come back (the delivery ledger then skips it) small.', 10),
    fetchMaxWaitMs: int(3000, 'Longest a fetch waits on an idle topic before returning empty (a record arriving answers it at once; on the Postline broker so do a stop and a rebalance, and npm start uses 10000); capped at a third of kafka.sessionTimeoutMs. On Kafka, stopping waits for the fetch in flight.', 10),
    connectionTimeoutMs: int(10_000, 'Time to open a TCP (and TLS) connection to an SMTP host, DNS included.', 1),
    greetingTimeoutMs: int(10_000, 'Time an SMTP host has to send its greeting once connected.', 1),
    socketTimeoutMs: int(60_000, 'Time an SMTP host may stay silent while a reply is due (a stalled DATA ends here); keep it above the idle timeout of the relay.', 1),
    // Direct delivery (routes, pools, MX resolution): the routing file.
    routesFile: str('', 'Routing file (YAML): routes (relay, or direct to the recipients\' MX hosts with a TLS policy and MTA-STS), IP pools with their source addresses, which pool a message uses, DNS settings and site overrides; see services/dispatcher/routes.example.yaml. Empty: every message leaves through dispatcher.relay.'),
    relay: RelaySection,
    fleet: FleetSection,
    breaker: BreakerSection,
    dedupe: DedupeSection,
    shapingFile: str('', 'Traffic shaping rules (YAML) per site and recipient domain; each key overrides the shipped defaults (services/dispatcher/shaping/default-shaping.yaml). Empty: the shipped defaults.'),
    shaping: ShapingSection,
  },
  'Dispatcher',
);
