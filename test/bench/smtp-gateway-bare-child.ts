/**
 * The SMTP gateway bench's baseline: a bare `smtp-server` with the gateway's TLS certificate,
 * SIZE and AUTH (any password) that only counts messages and answers 250 — in its own process
 * with the same node flags, as the gateway runs in its own. Prints `{ msg: 'bare ready', port }`.
 * Usage: smtp-gateway-bare-child.ts <key file> <cert file> <max bytes>
 */
import fs from 'node:fs';
import { SMTPServer } from 'smtp-server';

const [keyFile, certFile, maxBytes] = process.argv.slice(2);
let count = 0;
const server = new SMTPServer({
  key: fs.readFileSync(keyFile),
  cert: fs.readFileSync(certFile),
  size: Number(maxBytes),
  authMethods: ['PLAIN', 'LOGIN'],
  logger: false,
  onAuth: (_auth, _session, cb) => cb(null, { user: 'bench' }),
  onData(stream, _session, cb) {
    stream.on('data', () => undefined);
    stream.on('end', () => {
      count++;
      cb(null, `2.0.0 counted ${count}`);
    });
  },
});
server.on('error', () => undefined);
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ msg: 'bare ready', port: (server.server.address() as { port: number }).port })}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
// The bench holds stdin open: when it dies (Ctrl-C, a crash), this process goes with it.
process.stdin.on('end', () => process.exit(0)).resume();
