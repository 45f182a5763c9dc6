/**
 * A TCP gate in front of a server (e.g. an SMTP sink) that a test can take down and bring back
 * on the same port: `down()` stops listening and resets every open connection (what a crashed
 * relay looks like: new connections are refused, sessions break), `up()` listens again.
 *
 *   const gate = await startTcpGate(sink.port);   // point the code under test at gate.port
 *   await gate.down(); ... await gate.up();
 */
import net from 'node:net';

export interface TcpGate {
  host: string;
  port: number;
  readonly isUp: boolean;
  /** Connections accepted while up. */
  readonly accepted: number;
  /** Refuse new connections and reset the open ones. */
  down(): Promise<void>;
  /** Accept connections again, on the same port. */
  up(): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpGate(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpGate> {
  const open = new Set<net.Socket>();
  let accepted = 0;
  let server: net.Server | undefined;
  let port = 0;

  const listen = async (): Promise<void> => {
    const s = net.createServer((client) => {
      accepted++;
      const upstream = net.connect(targetPort, targetHost);
      open.add(client);
      open.add(upstream);
      const end = (): void => {
        client.destroy();
        upstream.destroy();
        open.delete(client);
        open.delete(upstream);
      };
      client.on('error', end).on('close', end);
      upstream.on('error', end).on('close', end);
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => resolve());
    });
    port = (s.address() as net.AddressInfo).port;
    server = s;
  };

  const stop = async (): Promise<void> => {
    const s = server;
    server = undefined;
    for (const sock of open) sock.resetAndDestroy();
    open.clear();
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  };

  await listen();
  return {
    host: '127.0.0.1',
    get port() {
      return port;
    },
    get isUp() {
      return server !== undefined;
    },
    get accepted() {
      return accepted;
    },
    down: stop,
    async up() {
      if (!server) await listen();
    },
    close: stop,
  };
}
