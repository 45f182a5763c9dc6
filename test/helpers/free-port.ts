/**
 * A TCP port on 127.0.0.1 that was free a moment ago (for servers that must be told a port up front).
 *
 * Ports are drawn from below the kernel's ephemeral range (Linux: 32768–60999). A port handed out
 * by `listen(0)` comes from that range, and once released it can be taken as the *local* port of
 * any outgoing connection on the machine (a Kafka client in a parallel test file, say); a server
 * told to listen there later then fails with EADDRINUSE for as long as that connection lives —
 * which is how a restarted stage in the supervision test once failed six times in a row on CI.
 * Nothing takes a port below the ephemeral range unless it asks for it by number.
 */
import net from 'node:net';
import { readFileSync } from 'node:fs';

const handedOut = new Set<number>();

function range(): [number, number] {
  let ephemeralLow = 32768;
  try {
    ephemeralLow = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || ephemeralLow;
  } catch {
    // not Linux: keep the default IANA-style boundary
  }
  const high = Math.min(ephemeralLow, 32768) - 1;
  return [Math.max(10_000, high - 12_000), high];
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)));
  });
}

export async function freePort(): Promise<number> {
  const [low, high] = range();
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = low + Math.floor(Math.random() * (high - low + 1));
    if (handedOut.has(port)) continue;
    if (await bindable(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`freePort: no free port on 127.0.0.1 between ${low} and ${high} after 200 tries`);
}
