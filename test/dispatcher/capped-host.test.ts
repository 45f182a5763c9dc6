/**
 * Issue 10 §2: a host that caps its fleet at one connection (421 to every further one) while a
 * bulk backlog drains through it. The fleet keeps the host's ceiling — it opens nothing above it —
 * and critical mail takes the connection next, after at most the bulk transaction on it; bulk
 * waits its turn. Measured through the whole dispatcher: produce → the relay's 250.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '../helpers/broker.js';
import { startHarness } from './dispatcher-harness.js';
import { recordFor } from './fleet-support.js';

/** Long enough that one transaction (plus fetch and produce overhead) is told apart from two. */
const TRANSACTION_MS = 1000;
const BULK = 15;

test('a host capped at one connection: critical gets through within one bulk transaction time while a bulk backlog holds it', async (t) => {
  const arrived = new Map<string, number>();
  const h = await startHarness(
    {
      maxConnections: 1,
      script: (rcpt) => (rcpt.startsWith('bulk') ? { dataCode: 250, delayMs: TRANSACTION_MS } : 250),
      onMessage: (m) => arrived.set(m.to[0], performance.now()),
    },
    { 'dispatcher.fleet.maxConnectionsPerHost': 6, 'dispatcher.fleet.reserveCritical': 2, 'dispatcher.fleet.reserveTransactional': 1, 'dispatcher.bulkYieldMs': 0 },
  );
  t.after(() => h.close());
  await h.produce(Array.from({ length: BULK }, (_, i) => recordFor([`bulk${i}@bulk.example`], { priority: 'bulk' })));
  const host = `127.0.0.1:${h.sink.port}`;
  await waitFor(async () => (await h.metric('postline_smtp_fleet_cap', `host="${host}"`)) === 1 && h.sink.messages.length >= 1, 15_000, 'fleet capped at one connection, bulk flowing');
  const latencies: number[] = [];
  for (let i = 0; i < 3; i++) {
    const r = recordFor([`alert${i}@critical.example`], { priority: 'critical' });
    const started = performance.now();
    await h.produce([r]);
    await waitFor(() => arrived.has(r.envelope.to[0]), 10_000, `critical ${i} delivered`);
    latencies.push(arrived.get(r.envelope.to[0])! - started);
  }
  console.log(`# critical behind a bulk backlog on a one-connection host: ${latencies.map((l) => Math.round(l)).join(', ')} ms (one bulk transaction: ${TRANSACTION_MS} ms)`);
  // The bulk transaction on the connection, then critical's own; plus the fetch wait and produce.
  for (const l of latencies) assert.ok(l < TRANSACTION_MS + 500, `critical waited ${Math.round(l)} ms`);
  assert.ok(h.sink.messages.filter((m) => m.to[0].startsWith('bulk')).length < BULK, 'bulk backlog still draining');
  assert.equal(await h.metric('postline_smtp_fleet_cap', `host="${host}"`), 1, 'the host\'s ceiling was kept');
  assert.ok(h.sink.openConnections <= 1);
  await h.sink.waitForMessages(BULK + 3, 60_000);
});
