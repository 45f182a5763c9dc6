/**
 * SMTP fleets and delivery against real `smtp-server` sinks (no broker): reuse, growth and the
 * host's ceiling, idle closing, misbehaving servers, priority capacity and fallback hosts.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { deliver, type DeliveryAttempt } from '../../services/dispatcher/deliver.js';
import { outcomesOf } from '../../services/dispatcher/smtp-outcome.js';
import type { FleetRegistry } from '../../services/dispatcher/fleet-registry.js';
import { startSmtpSink, type SmtpSink, type SmtpSinkOptions } from '../helpers/smtp-sink.js';
import { waitFor } from '../helpers/broker.js';
import { closedPort, fleetsWith, recordFor, routeOf } from './fleet-support.js';

const cleanup: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

async function sink(opts: SmtpSinkOptions = {}): Promise<SmtpSink> {
  const s = await startSmtpSink({ greetingDelay: false, ...opts });
  cleanup.push(() => s.close());
  return s;
}

function fleets(...args: Parameters<typeof fleetsWith>): FleetRegistry {
  const f = fleetsWith(...args);
  cleanup.push(() => f.close());
  return f;
}

const kindOf = (a: DeliveryAttempt, to: string[]): string => outcomesOf(to, a.result).map((o) => o.kind).join(',');

test('connections are reused: 100 messages, 5 at a time, over at most 5 connections', async () => {
  const s = await sink();
  const f = fleets({ max: 5, reserve: { critical: 0, transactional: 0 } });
  const route = routeOf(s.port);
  const attempts: DeliveryAttempt[] = [];
  const queue = Array.from({ length: 100 }, (_, i) => recordFor([`r${i}@example.org`]));
  await Promise.all(
    Array.from({ length: 5 }, async () => {
      for (let r = queue.shift(); r; r = queue.shift()) attempts.push(await deliver(r, route, f));
    }),
  );
  assert.equal(s.messages.length, 100);
  assert.ok(s.connections <= 5, `${s.connections} connections`);
  assert.ok(attempts.filter((a) => a.connectionReused).length >= 95);
  assert.ok(attempts.every((a) => 'info' in a.result));
});

test('a refused recipient is reset (RSET) and the connection carries the next message', async () => {
  const s = await sink({ script: (rcpt) => (rcpt.startsWith('unknown') ? 550 : 250) });
  const f = fleets();
  const route = routeOf(s.port);
  const bounced = await deliver(recordFor(['unknown@example.org']), route, f);
  assert.equal(kindOf(bounced, ['unknown@example.org']), 'bounced');
  const sent = await deliver(recordFor(['known@example.org']), route, f);
  assert.equal(kindOf(sent, ['known@example.org']), 'sent');
  assert.equal(sent.connectionReused, true);
  assert.equal(s.connections, 1);
  assert.equal(s.rcptAttempts.get('unknown@example.org'), 1);
});

test('the fleet grows while all connections are busy and stops at the 421 ceiling of the host', async () => {
  // The host takes 3 connections and answers 421 to the 4th; every message takes 200 ms.
  const s = await sink({ maxConnections: 3, script: () => ({ dataCode: 250, delayMs: 200 }) });
  const f = fleets({ max: 10, reserve: { critical: 0, transactional: 0 } });
  const ceilings: number[] = [];
  f.on('ceiling', (_host: string, cap: number) => ceilings.push(cap));
  const route = routeOf(s.port);
  const records = Array.from({ length: 12 }, (_, i) => recordFor([`r${i}@example.org`]));
  const attempts = await Promise.all(records.map((r) => deliver(r, route, f)));
  assert.deepEqual(attempts.map((a, i) => kindOf(a, records[i].envelope.to)), Array(12).fill('sent'));
  assert.equal(s.messages.length, 12);
  // Each refusal lowers the cap to the connections open or opening then; it settles at 3.
  assert.equal(ceilings.at(-1), 3, `ceilings ${ceilings}`);
  assert.equal(f.stats()[0].cap, 3);
  assert.equal(f.stats()[0].size, 3);
  // Capped: more work opens no more connections during the cool-down.
  const before = s.connections;
  await Promise.all(Array.from({ length: 6 }, (_, i) => deliver(recordFor([`more${i}@example.org`]), route, f)));
  assert.equal(s.connections, before);
});

test('a host that refuses connections beyond two (closes at once) caps the fleet at two', async () => {
  let open = 0;
  const s = await sink({ connect: () => (open >= 2 ? 'close' : (open++, 'greet')), script: () => ({ dataCode: 250, delayMs: 150 }) });
  const f = fleets({ max: 8, reserve: { critical: 0, transactional: 0 } });
  const route = routeOf(s.port);
  const attempts = await Promise.all(Array.from({ length: 8 }, (_, i) => deliver(recordFor([`r${i}@example.org`]), route, f)));
  assert.ok(attempts.every((a) => 'info' in a.result));
  assert.equal(f.stats()[0].cap, 2);
  assert.equal(f.stats()[0].size, 2);
});

test('idle connections above the warm count are closed after the idle timeout', async () => {
  const s = await sink({ script: () => ({ dataCode: 250, delayMs: 100 }) });
  const f = fleets({ warm: 1, idleTimeoutMs: 300, reserve: { critical: 0, transactional: 0 } });
  const closed: string[] = [];
  f.on('closed', (_h: string, _c: unknown, reason: string) => closed.push(reason));
  const route = routeOf(s.port);
  await Promise.all(Array.from({ length: 4 }, (_, i) => deliver(recordFor([`r${i}@example.org`]), route, f)));
  assert.equal(f.stats()[0].size, 4);
  const quietSince = Date.now();
  await waitFor(() => f.stats()[0].size === 1, 5000, 'fleet back to its warm connection');
  assert.ok(Date.now() - quietSince >= 250, 'not closed before the idle timeout');
  await s.waitForOpenAtMost(1);
  assert.deepEqual(closed, ['idle', 'idle', 'idle']);
});

test('a server that never greets times out within the greeting timeout; the message is deferred', async () => {
  const s = await sink({ connect: () => 'hang' });
  const f = fleets({ timeouts: { connectionTimeoutMs: 2000, greetingTimeoutMs: 300, socketTimeoutMs: 5000 } });
  const started = Date.now();
  const a = await deliver(recordFor(['r@example.org']), routeOf(s.port), f);
  const elapsed = Date.now() - started;
  const [o] = outcomesOf(['r@example.org'], a.result);
  assert.equal(o.kind, 'deferred');
  assert.equal(o.code, 'SMTP_GREETING_TIMEOUT');
  assert.ok(elapsed >= 250 && elapsed < 2000, `${elapsed} ms`);
});

test('a server that stalls mid-DATA times out within the socket timeout; the fleet recovers', async () => {
  const s = await sink({ script: (rcpt) => (rcpt.startsWith('stall') ? 'stall-data' : 250) });
  const f = fleets({ timeouts: { connectionTimeoutMs: 2000, greetingTimeoutMs: 2000, socketTimeoutMs: 400 } });
  const route = routeOf(s.port);
  const started = Date.now();
  const a = await deliver(recordFor(['stall@example.org']), route, f);
  const elapsed = Date.now() - started;
  const [o] = outcomesOf(['stall@example.org'], a.result);
  assert.equal(o.kind, 'deferred');
  assert.equal(o.code, 'SMTP_TIMEOUT');
  assert.ok(elapsed >= 350 && elapsed < 3000, `${elapsed} ms`);
  const next = await deliver(recordFor(['fine@example.org']), route, f);
  assert.ok('info' in next.result);
  assert.equal(s.messagesTo('fine@example.org').length, 1);
});

test('a connection dropped mid-DATA is replaced and the message goes again on another connection', async () => {
  const s = await sink({ script: (_rcpt, ctx) => (ctx.attempt === 1 ? 'drop-data' : 250) });
  const f = fleets();
  const a = await deliver(recordFor(['r@example.org']), routeOf(s.port), f);
  assert.ok('info' in a.result, 'sent on the second connection');
  assert.equal(a.tries, 2);
  assert.equal(s.messagesTo('r@example.org').length, 1);
  assert.equal(s.connections, 2);
});

test('a connection dropped after DATA (no reply) is retried once; dropped again, the message is deferred', async () => {
  const s = await sink({ script: () => 'drop-after-data' });
  const f = fleets();
  const a = await deliver(recordFor(['r@example.org']), routeOf(s.port), f);
  const [o] = outcomesOf(['r@example.org'], a.result);
  assert.equal(o.kind, 'deferred');
  assert.equal(o.code, 'SMTP_CONNECTION');
  assert.equal(a.tries, 2);
  assert.equal(s.dataReceived, 2);
});

test('critical gets a connection at once while bulk saturates its share of the fleet', async () => {
  const s = await sink({ script: (rcpt) => (rcpt.startsWith('bulk') ? { dataCode: 250, delayMs: 1500 } : 250) });
  // 4 connections; bulk may hold 3, critical always has one more.
  const f = fleets({ max: 4, reserve: { critical: 1, transactional: 0 } });
  const route = routeOf(s.port);
  const bulk = Array.from({ length: 10 }, (_, i) => deliver(recordFor([`bulk${i}@example.org`], { priority: 'bulk' }), route, f));
  await waitFor(() => f.stats()[0]?.busy === 3, 5000, 'bulk holding its three connections');
  assert.equal(f.stats()[0].waiting, 7);
  const started = Date.now();
  const critical = await deliver(recordFor(['alert@example.org'], { priority: 'critical' }), route, f);
  const elapsed = Date.now() - started;
  assert.ok('info' in critical.result);
  assert.ok(elapsed < 1000, `critical took ${elapsed} ms behind bulk`);
  assert.ok(s.messages.filter((m) => m.to[0].startsWith('bulk')).length < 10, 'bulk still queued when critical arrived');
  await Promise.all(bulk);
  assert.equal(s.messages.length, 11);
});

test('a host capped at one connection (421 to the second): critical gets through within one transaction time; bulk yields the connection and waits', async () => {
  const TRANSACTION_MS = 800; // one transaction (plus overhead) is told apart from two
  const s = await sink({ maxConnections: 1, script: (rcpt) => (rcpt.startsWith('bulk') ? { dataCode: 250, delayMs: TRANSACTION_MS } : 250) });
  const f = fleets({ max: 4, reserve: { critical: 1, transactional: 1 } });
  const route = routeOf(s.port);
  const bulk = Array.from({ length: 10 }, (_, i) => deliver(recordFor([`bulk${i}@example.org`], { priority: 'bulk' }), route, f));
  await waitFor(() => f.stats()[0]?.cap === 1 && f.stats()[0].busy === 1, 5000, 'fleet capped at one connection, held by bulk');
  const timings: number[] = [];
  for (let i = 0; i < 3; i++) {
    const started = performance.now();
    const critical = await deliver(recordFor([`alert${i}@example.org`], { priority: 'critical' }), route, f);
    timings.push(performance.now() - started);
    assert.ok('info' in critical.result, `critical ${i}: ${JSON.stringify(critical.result)}`);
  }
  // At most the bulk transaction on the connection, then critical's own (instant) one.
  for (const t of timings) assert.ok(t < TRANSACTION_MS + 400, `critical took ${Math.round(t)} ms behind bulk (one transaction: ${TRANSACTION_MS} ms)`);
  assert.ok(s.messages.filter((m) => m.to[0].startsWith('bulk')).length < 10, 'bulk still queued when critical went');
  assert.equal(f.stats()[0].cap, 1, 'the host\'s ceiling was kept');
  await Promise.all(bulk);
  assert.equal(s.messages.length, 13);
});

test('an unreachable host hands over to the fallback host of the route', async () => {
  const fallback = await sink();
  const f = fleets();
  const a = await deliver(recordFor(['r@example.org']), routeOf(await closedPort(), fallback.port), f);
  assert.ok('info' in a.result);
  assert.equal(a.host, `127.0.0.1:${fallback.port}`);
  assert.equal(fallback.messages.length, 1);
});

test('a host whose connections keep breaking under the message hands over to the next host', async () => {
  const dying = await sink({ script: () => 'drop-after-data' });
  const fallback = await sink();
  const f = fleets();
  const a = await deliver(recordFor(['r@example.org']), routeOf(dying.port, fallback.port), f);
  assert.ok('info' in a.result);
  assert.equal(a.fallback, true);
  assert.equal(a.host, `127.0.0.1:${fallback.port}`);
  assert.equal(dying.rcptAttempts.get('r@example.org'), 2, 'tried twice on the first host');
  assert.equal(fallback.messages.length, 1);
});

test('a refusal from the server is final: no fallback for a 4xx or 5xx reply', async () => {
  const busy = await sink({ script: () => 451 });
  const fallback = await sink();
  const f = fleets();
  const a = await deliver(recordFor(['r@example.org']), routeOf(busy.port, fallback.port), f);
  assert.equal(outcomesOf(['r@example.org'], a.result)[0].kind, 'deferred');
  assert.equal(fallback.rcptAttempts.size, 0);
});

test('with no host reachable the message is deferred with the connection error', async () => {
  const f = fleets();
  const started = Date.now();
  const a = await deliver(recordFor(['r@example.org']), routeOf(await closedPort()), f);
  const [o] = outcomesOf(['r@example.org'], a.result);
  assert.equal(o.kind, 'deferred');
  assert.equal(o.code, 'SMTP_CONNECTION');
  assert.match(o.reason, /ECONNREFUSED/);
  assert.ok(Date.now() - started < 2000);
});

test('closing a fleet says QUIT on every connection', async () => {
  const s = await sink();
  const f = fleetsWith({ warm: 3 });
  f.warm(routeOf(s.port).hosts);
  await waitFor(() => f.stats()[0].size === 3, 5000, 'warm connections');
  await f.close();
  await s.waitForOpenAtMost(0);
  assert.equal(f.stats()[0].size, 0);
});

test('the sink keeps smtp-server\'s 100 ms greeting delay unless it is turned off', async () => {
  const slow = await startSmtpSink();
  cleanup.push(() => slow.close());
  const f = fleets();
  const started = Date.now();
  const a = await deliver(recordFor(['r@example.org']), routeOf(slow.port), f);
  assert.ok('info' in a.result);
  assert.ok(Date.now() - started >= 95, 'a new connection waits for the delayed greeting');
});
