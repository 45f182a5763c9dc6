/**
 * A client that dies in the middle of an SMTP transaction, as a SIGKILLed dispatcher does:
 * it speaks SMTP up to the middle of DATA, then resets the connection (TCP RST).
 */
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

function reader(socket: net.Socket): (code: string) => Promise<void> {
  let buffer = '';
  const waiters: Array<() => void> = [];
  socket.on('data', (d: Buffer) => {
    buffer += d.toString('latin1');
    for (const w of waiters.splice(0)) w();
  });
  return (code) =>
    new Promise<void>((resolve, reject) => {
      const check = (): void => {
        const lines = buffer.split('\r\n');
        if (lines.some((l) => l.startsWith(`${code} `))) {
          buffer = '';
          resolve();
        } else waiters.push(check);
      };
      socket.once('error', reject);
      check();
    });
}

/** One transaction cut short mid-DATA by a reset. */
export async function resetMidData(port: number, host = '127.0.0.1', pauseMs = 100): Promise<void> {
  const socket = net.connect(port, host);
  const expect = reader(socket);
  await expect('220');
  socket.write('EHLO client.test\r\n');
  await expect('250');
  socket.write('MAIL FROM:<a@example.com>\r\n');
  await expect('250');
  socket.write('RCPT TO:<b@example.org>\r\n');
  await expect('250');
  socket.write('DATA\r\n');
  await expect('354');
  await new Promise<void>((resolve) => socket.write('Subject: cut short\r\n\r\nthe first half of a body', () => resolve()));
  // The server must have read the first half before the reset arrives: a reset that lands
  // together with the data can read as a plain close (seen on gVisor's network stack).
  await sleep(pauseMs);
  socket.resetAndDestroy();
}

/**
 * Resets transactions until the server reports it (`reported`), at most `attempts` times, each
 * pausing longer before the reset; throws if it never does.
 */
export async function resetMidDataUntil(port: number, reported: () => boolean | Promise<boolean>, attempts = 5): Promise<void> {
  for (let i = 0; i < attempts; i++) {
    await resetMidData(port, '127.0.0.1', 100 * 2 ** i);
    for (let wait = 0; wait < 20; wait++) {
      if (await reported()) return;
      await sleep(50);
    }
  }
  throw new Error(`the server never reported a connection reset in ${attempts} attempts`);
}
