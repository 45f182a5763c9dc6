/**
 * A fleet whose connections retire at their message quota never has more connections open at
 * the host than its cap, also while a retiring connection's replacement is opened.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { deliver } from '../../services/dispatcher/deliver.js';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { fleetsWith, recordFor, routeOf } from './fleet-support.js';

const cleanup: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

test('connections retiring at their message quota are replaced without passing the cap (20 at most at the host)', async () => {
  const CAP = 20;
  let most = 0;
  let s: SmtpSink | undefined;
  s = await startSmtpSink({
    greetingDelay: false,
    // Counted at the host, as a provider counts: sockets open when a new one is greeted.
    connect: () => {
      most = Math.max(most, s!.openConnections);
      return 'greet';
    },
  });
  cleanup.push(() => s!.close());
  const f = fleetsWith({ max: CAP, maxMessagesPerConnection: 3, reserve: { critical: 0, transactional: 0 } });
  cleanup.push(() => f.close());
  const route = routeOf(s.port);
  const queue = Array.from({ length: 1200 }, (_, i) => recordFor([`r${i}@example.org`]));
  await Promise.all(
    Array.from({ length: 40 }, async () => {
      for (let r = queue.shift(); r; r = queue.shift()) await deliver(r, route, f);
    }),
  );
  assert.equal(s.messages.length, 1200);
  assert.ok(s.connections >= 400, `${s.connections} connections: each carried at most 3 messages`);
  assert.ok(most <= CAP, `${most} connections open at once at the host (cap ${CAP})`);
});
