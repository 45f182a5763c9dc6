/**
 * Single-message latency of a running `npm start`: one message at a time, accepted (the send
 * API's 202) → 250 at an SMTP sink this script runs, with the first message timed on its own.
 * Start the sink first, then `npm start` relaying to it:
 *
 *   node --import tsx test/bench/single-message-latency.ts <portFile> <apiUrl> <apiKeyFile> [count] [perSecond]
 *   POSTLINE_DISPATCHER_RELAY_HOST=127.0.0.1 POSTLINE_DISPATCHER_RELAY_PORT=$(cat <portFile>) npm start -- ...
 *
 * The script waits for the API, sends `count` messages (default 200) at `perSecond` (default
 * 10), each after the previous one arrived, and prints first/p50/p90/p99/max in ms as JSON.
 */
import fs from 'node:fs';
import { startSmtpSink } from '../helpers/smtp-sink.js';

const [portFile, apiUrl, keyFile, countArg, rateArg] = process.argv.slice(2);
const count = Number(countArg ?? 200);
const gapMs = 1000 / Number(rateArg ?? 10);

const sink = await startSmtpSink({ greetingDelay: false });
fs.writeFileSync(portFile, String(sink.port));
console.error(`sink listening on ${sink.host}:${sink.port}; waiting for ${apiUrl}`);

async function send(i: number): Promise<number> {
  for (;;) {
    try {
      const key = fs.readFileSync(keyFile, 'utf8').trim();
      const res = await fetch(`${apiUrl}/v1/emails`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ from: 'Probe <probe@example.com>', to: [`probe${i}@example.org`], subject: `latency ${i}`, text: 'One at a time.' }),
      });
      if (res.status === 202 || res.status === 200) return Date.now();
      await res.text();
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

const latencies: number[] = [];
for (let i = 0; i < count; i++) {
  const before = sink.messages.length;
  const tick = Date.now();
  const accepted = await send(i);
  const deadline = Date.now() + 30_000;
  while (sink.messages.length === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  const got = sink.messages[before];
  if (!got) throw new Error(`message ${i} did not arrive within 30 s`);
  latencies.push(got.at - accepted);
  const wait = gapMs - (Date.now() - tick);
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
}
const [first, ...rest] = latencies;
const sorted = [...rest].sort((a, b) => a - b);
const q = (p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
console.log(JSON.stringify({ count, first, p50: q(0.5), p90: q(0.9), p99: q(0.99), max: sorted.at(-1) }));
await sink.close();
