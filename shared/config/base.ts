/** Options every service shares: logging, Kafka, the operations server. */
import { Type } from '@sinclair/typebox';
import { section, int, str, bool } from './schema-helpers.js';

export const LogSection = section(
  {
    level: Type.Union(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].map((l) => Type.Literal(l)), { default: 'info', description: 'Log level.' }),
  },
  'Logging',
);

export const KafkaSection = section(
  {
    brokers: Type.Array(Type.String(), { default: ['127.0.0.1:9092'], minItems: 1, description: 'Bootstrap brokers (comma-separated host:port).' }),
    clientId: str('postline', 'Kafka client id prefix; the service name is appended.'),
    connectionTimeoutMs: int(3000, 'Timeout for establishing a broker connection.', 1),
    requestTimeoutMs: int(30000, 'Timeout for one broker request.', 1),
    sessionTimeoutMs: int(
      30000,
      'Consumer group session timeout: how long a consumer that stopped heartbeating keeps its partitions before its group goes on without it, so also how long its replacement may wait to join. On the Postline broker (npm start) a member whose connection closes (a killed process) leaves at once; the session covers a hung process or a lost network. Heartbeats go every third of it (at most 3 s); fetch waits are capped at a third of it. Analytics has its own (analytics.sessionTimeoutMs).',
      3000,
    ),
    fetchMaxWaitMs: int(
      3000,
      'Longest a consumer\'s fetch waits on the broker for new records before returning empty. The broker answers the moment a record arrives, so this costs no latency; it sets how often an idle consumer wakes (and heartbeats: kafkajs heartbeats between fetches, so the wait is capped at a third of the session timeout). On Kafka, stopping a consumer waits for its fetch in flight and a rebalance reaches the other members up to this much later; on the Postline broker a stop, a resumed partition, a seek and a rebalance of the consumer\'s group end the wait, and npm start uses 10000. Throwaway readers of whole topics (tables, tails) wait 60 s; readers of email.events off the send path wait kafka.followerMaxWaitMs.',
      10,
    ),
    followerMaxWaitMs: int(
      1000,
      'Readers of email.events off the send path (webhooks, the suppression feeder, the dispatchers\' tail, analytics) ask for 64 KiB (analytics 256 KiB) per fetch and wait at most this long for it, so they take events in batches rather than one fetch per event; it is also how late an event may reach them when few come. On the Postline broker a fetch that has any records waits at most 500 ms more, so npm start uses 10000 (an idle reader then wakes every 10 s).',
      10,
    ),
    producerLingerMs: int(
      0,
      'Longest a produced record waits for others to share its request (and the broker\'s fsync) when no request is in flight; 0 sends at the end of the current event-loop turn (records produced in one turn, such as a record and its event, still share a request). Records that arrive while a request is in flight always go out together in the next, so under load batches form without it; at rest every hop of a message (ingest, renderer, dispatcher outcome) waits this long once. The scheduler lingers at least 2 ms (its releases come in bursts); the SMTP gateway never.',
    ),
    createTopics: bool(true, 'Create missing Postline topics at start-up with the partition count below.'),
    partitions: int(6, 'Partitions for email.requested, email.events and the dispatch/retry topics when Postline creates them; caps the replicas per stage.', 1),
    replicationFactor: int(1, 'Replication factor when Postline creates topics (3 on a production Kafka cluster).', 1),
  },
  'Kafka connection and topic creation',
);

export const OpsSection = section(
  {
    host: str('0.0.0.0', 'Interface for the operations server (/metrics, /healthz, /readyz).'),
    port: int(9464, 'Port for the operations server; 0 picks a free port.'),
    shutdownGraceMs: int(25000, 'How long SIGTERM may take to drain in-flight work before the process exits.'),
    consumerGraceMs: int(90000, 'How long a stage\'s consumer may be out of its group (a rebalance, a restart; kafkajs allows a rebalance 60 s) before /healthz fails and, under `npm start`, the stage exits to be restarted.', 1),
  },
  'Operations endpoints and shutdown',
);
