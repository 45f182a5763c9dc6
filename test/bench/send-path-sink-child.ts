/**
 * The send-path benchmark's SMTP sink, run as its own process (forked by send-path-sink.ts):
 * a plain `smtp-server` on 127.0.0.1 that answers 250 to everything, keeps nothing but counts,
 * and keeps smtp-server's 100 ms wait before the greeting (what a real relay costs a new
 * connection). Over IPC it tells its port, and on request the times of the first and the n-th
 * delivery from now on, so throughput is measured where the 250 is given — or, after `watch`,
 * the arrival time of each message to a recipient with a given prefix (latency runs).
 */
import type net from 'node:net';
import { SMTPServer } from 'smtp-server';

const epochMs = (): number => performance.timeOrigin + performance.now();
const send = (m: Record<string, unknown>): void => void process.send?.(m);

let delivered = 0;
let connections = 0;
let open = 0;

interface Expectation {
  id: number;
  target: number;
  connectionsAtStart: number;
  firstAt?: number;
}
let expectation: Expectation | undefined;
/** Recipients starting with this are reported one by one as they arrive (latency runs). */
let watchPrefix: string | undefined;

function onDelivered(): void {
  delivered++;
  const e = expectation;
  if (!e) return;
  e.firstAt ??= epochMs();
  if (delivered >= e.target) {
    expectation = undefined;
    send({ type: 'reached', id: e.id, firstAt: e.firstAt, lastAt: epochMs(), connections: connections - e.connectionsAtStart });
  }
}

const server = new SMTPServer({
  logger: false,
  disabledCommands: ['STARTTLS', 'AUTH'],
  authOptional: true,
  disableReverseLookup: true,
  closeTimeout: 100,
  onData(stream, session, callback) {
    stream.on('data', () => undefined);
    stream.on('end', () => {
      onDelivered();
      if (watchPrefix !== undefined) {
        for (const r of session.envelope.rcptTo) if (r.address.startsWith(watchPrefix)) send({ type: 'arrival', rcpt: r.address, at: epochMs() });
      }
      callback(null, 'OK: queued');
    });
  },
});
server.on('error', () => undefined);
server.server.on('connection', (socket: net.Socket) => {
  connections++;
  open++;
  socket.once('close', () => open--);
});

process.on('message', (m: { cmd: string; id?: number; n?: number }) => {
  if (m.cmd === 'expect') {
    expectation = { id: m.id ?? 0, target: delivered + (m.n ?? 0), connectionsAtStart: connections };
    send({ type: 'expecting', id: m.id });
  } else if (m.cmd === 'watch') {
    watchPrefix = (m as { prefix?: string }).prefix;
    send({ type: 'watching' });
  } else if (m.cmd === 'cancel') {
    expectation = undefined;
    send({ type: 'cancelled' });
  } else if (m.cmd === 'stats') {
    send({ type: 'stats', delivered, connections, open });
  }
});
process.on('disconnect', () => process.exit(0));

server.listen(0, '127.0.0.1', () => {
  send({ type: 'listening', port: (server.server.address() as net.AddressInfo).port });
});
