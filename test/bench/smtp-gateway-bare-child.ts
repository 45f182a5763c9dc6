/**
 * The SMTP gateway bench's baselines, in their own process with the gateway's node flags, as the
 * gateway runs in its own: a bare `smtp-server` with the gateway's TLS certificate, SIZE and AUTH
 * (any password) that answers 250 to every message and
 * - only counts it (no bootstrap argument), or
 * - with a broker's bootstrap address, first produces the message's bytes as one record with
 *   plain kafkajs (acks=-1: the broker fsyncs before it acknowledges, as for the gateway's
 *   records) and answers 250 once acknowledged: the least a gateway that never loses an accepted
 *   message does, made of the same two libraries — no parsing, no contract, no event. Messages
 *   that end while a produce is in flight go out together in the next one (one request, one
 *   fsync), as the gateway's do: without that, a request per message cost it more than the
 *   gateway's whole work.
 * Prints `{ msg: 'bare ready', port }`.
 * Usage: smtp-gateway-bare-child.ts <key file> <cert file> <max bytes> [<bootstrap> <topic>]
 */
import fs from 'node:fs';
import { randomUUID } from 'node:crypto';
import { SMTPServer } from 'smtp-server';
import { Kafka, logLevel, type Producer } from 'kafkajs';

const [keyFile, certFile, maxBytes, bootstrap, topic] = process.argv.slice(2);
let producer: Producer | undefined;
if (bootstrap) {
  producer = new Kafka({ clientId: 'bench-durable-counter', brokers: [bootstrap], logLevel: logLevel.NOTHING }).producer();
  await producer.connect();
}
let count = 0;

/** Messages waiting for the next produce, and whether one is in flight. */
let queue: Array<{ value: Buffer; done: (err?: Error) => void }> = [];
let sending = false;
async function drain(p: Producer): Promise<void> {
  sending = true;
  while (queue.length > 0) {
    // Whatever else ends in this turn of the event loop joins the request.
    await new Promise((r) => setImmediate(r));
    const batch = queue;
    queue = [];
    try {
      await p.send({ topic, acks: -1, messages: batch.map((m) => ({ key: randomUUID(), value: m.value })) });
      for (const m of batch) m.done();
    } catch (err) {
      for (const m of batch) m.done(err as Error);
    }
  }
  sending = false;
}

const server = new SMTPServer({
  key: fs.readFileSync(keyFile),
  cert: fs.readFileSync(certFile),
  size: Number(maxBytes),
  authMethods: ['PLAIN', 'LOGIN'],
  logger: false,
  onAuth: (_auth, _session, cb) => cb(null, { user: 'bench' }),
  onData(stream, _session, cb) {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => {
      if (producer) chunks.push(c);
    });
    stream.on('end', () => {
      if (!producer) {
        count++;
        cb(null, `2.0.0 counted ${count}`);
        return;
      }
      queue.push({
        value: Buffer.concat(chunks),
        done: (err) => (err ? cb(Object.assign(new Error(`not queued: ${err.message}`), { responseCode: 451 })) : cb(null, `2.0.0 queued ${++count}`)),
      });
      if (!sending) void drain(producer);
    });
  },
});
server.on('error', () => undefined);
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ msg: 'bare ready', port: (server.server.address() as { port: number }).port })}\n`);
});
process.on('SIGTERM', () => server.close(() => void (producer?.disconnect() ?? Promise.resolve()).finally(() => process.exit(0))));
// The bench holds stdin open: when it dies (Ctrl-C, a crash), this process goes with it.
process.stdin.on('end', () => process.exit(0)).resume();
