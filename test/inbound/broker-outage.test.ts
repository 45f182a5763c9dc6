/**
 * At-least-once: the end of DATA is answered 250 only once the events are acknowledged. With the
 * broker stopped, a bounce is answered 451 within the publish timeout (the sender keeps it and
 * retries); once the broker is back, the retried bounce is recorded.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { InboundHarness, counter, fill, returnPath } from './inbound-harness.js';
import { waitFor } from '../helpers/broker.js';

let h: InboundHarness;
before(async () => {
  h = await InboundHarness.start();
});
after(() => h.stop());

test('broker down → 451 (never 250 for an unrecorded bounce); broker back → 250 and the event', async () => {
  const inbound = await h.inbound({ 'inbound.publishTimeoutMs': 1000 });
  const c = { messageId: randomUUID(), tenant: 'acme', recipient: 'jane.doe@gmail.com' };
  const dsn = fill('gmail-dsn.eml', c, 'jane.doe@gmail.com');
  await h.stopBroker();
  const started = Date.now();
  const down = await h.send(inbound.port, [returnPath(c)], dsn);
  assert.equal(down.code, 451, down.response);
  assert.match(down.response ?? '', /4\.3\.0/);
  assert.ok(Date.now() - started < 10_000, 'answered within the publish timeout');
  assert.equal(await counter(inbound.registry, 'postline_inbound_messages_total', { kind: 'bounce', outcome: 'retry' }), 1);

  await h.restartBroker();
  await waitFor(async () => (await h.send(inbound.port, [returnPath(c)], dsn)).code === 250, 60_000, 'the retried bounce to be accepted');
  const events = await h.waitForEvents(c.messageId);
  assert.ok(events.every((e) => e.type === 'bounced' && e.recipients?.[0] === 'jane.doe@gmail.com'));
});
