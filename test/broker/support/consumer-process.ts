/**
 * A kafkajs group consumer in its own process, so a test can crash it (SIGKILL) and watch the
 * group recover. Reports on stdout, one JSON object per line:
 *   {"event":"joined","memberId":…,"generation":…,"assignment":{topic:[partitions]}}
 *   {"event":"message","partition":…,"offset":…,"generation":…}
 * Usage: node --import tsx consumer-process.ts <bootstrap> <topic> <groupId> [sessionTimeoutMs]
 */
import { Kafka, logLevel, type LogEntry } from 'kafkajs';

const [bootstrap, topic, groupId, session] = process.argv.slice(2);
let generation = -1;
const kafka = new Kafka({
  brokers: [bootstrap],
  clientId: 'consumer-process',
  logLevel: logLevel.DEBUG,
  // The generation a member acts in is only in kafkajs's debug log of the assignment it got.
  logCreator: () => (entry: LogEntry) => {
    if (entry.log.message === 'Received assignment') generation = Number(entry.log.generationId);
  },
});
const consumer = kafka.consumer({ groupId, sessionTimeout: Number(session ?? 6000), heartbeatInterval: 300, maxWaitTimeInMs: 100, rebalanceTimeout: 10_000 });
const say = (o: object): void => void process.stdout.write(`${JSON.stringify(o)}\n`);
consumer.on(consumer.events.GROUP_JOIN, (e) => say({ event: 'joined', memberId: e.payload.memberId, generation, assignment: e.payload.memberAssignment }));
await consumer.connect();
await consumer.subscribe({ topic, fromBeginning: true });
await consumer.run({
  eachMessage: async ({ partition, message }) => say({ event: 'message', partition, offset: Number(message.offset), generation }),
});
process.on('SIGTERM', () => void consumer.disconnect().then(() => process.exit(0)));
