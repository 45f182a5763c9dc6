/**
 * The real traffic shaper inside the dispatcher, end to end on the fake internet: warm-up caps
 * move traffic to the pool's other address and then defer it (POOL_UNAVAILABLE); unknown-user
 * bounces pause an address until the ops route resumes it; a throttling site (421 4.7.28) is
 * slowed down without holding up another site; and adaptive back-off closes connections at the
 * MX host, which come back once the site has recovered. What reached the providers is checked
 * at the providers (peer addresses, open connections), not assumed from the dispatcher.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { waitFor } from '../helpers/broker.js';
import { startFakeInternet, type FakeInternet, type FakeSmtpServer, THROTTLED } from '../helpers/fake-internet/index.js';
import { startHarness, type Harness } from '../dispatcher/dispatcher-harness.js';
import { recordFor } from '../dispatcher/fleet-support.js';
import { writeDeliveryFiles } from './delivery-files.js';
import { EmailEventContract, type EmailEvent } from '../../shared/contracts/email-event.js';
import { Topics } from '../../shared/topics.js';

const today = new Date().toISOString().slice(0, 10);
const UNKNOWN = Array.from({ length: 10 }, (_, i) => `gone${i}@bad.test`);

describe('traffic shaping in the dispatcher (fake internet)', () => {
  let net: FakeInternet;
  let h: Harness;
  let dir: string;
  let warmMx: FakeSmtpServer;
  let badMx: FakeSmtpServer;
  let slowMx: FakeSmtpServer;
  let fastMx: FakeSmtpServer;
  let paceMx: FakeSmtpServer;
  let burstMx: FakeSmtpServer;
  let complainMx: FakeSmtpServer;
  const pace = { throttle: false };

  before(async () => {
    net = await startFakeInternet();
    warmMx = await net.smtp({ mxFor: 'warm.test' });
    badMx = await net.smtp({ mxFor: 'bad.test', script: { unknownUsers: UNKNOWN } });
    slowMx = await net.smtp({ mxFor: 'slow.test', script: { throttleAfterPerMinute: 3 } });
    fastMx = await net.smtp({ mxFor: 'fast.test' });
    burstMx = await net.smtp({ mxFor: 'burst.test' });
    complainMx = await net.smtp({ mxFor: 'complain.test' });
    paceMx = await net.smtp({
      mxFor: 'pace.test',
      script: { replyDelayMs: 100, rcpt: () => (pace.throttle ? THROTTLED : undefined) },
    });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'postline-shaping-e2e-'));
    const files = writeDeliveryFiles(dir, net, {
      pools: {
        // .3 takes nearly everything until its cap; then .4 until its own.
        warm: {
          route: 'direct',
          addresses: [
            { address: '127.0.0.3', ehlo: 'mta3.postline.test', weight: 1000, warmup: { start: today, schedule: [[1, 2]] } },
            { address: '127.0.0.4', ehlo: 'mta4.postline.test', weight: 1, warmup: { start: today, schedule: [[1, 3]] } },
          ],
        },
        risky: { route: 'direct', addresses: [{ address: '127.0.0.5', ehlo: 'mta5.postline.test' }] },
        pace: { route: 'direct', addresses: [{ address: '127.0.0.6', ehlo: 'mta6.postline.test' }] },
        burst: { route: 'direct', addresses: [{ address: '127.0.0.9', ehlo: 'mta9.postline.test', warmup: { start: today, schedule: [[1, 5]] } }] },
        complaints: { route: 'direct', addresses: [{ address: '127.0.0.8', ehlo: 'mta8.postline.test' }] },
      },
      sites: {
        'slow.test': { maxConnections: 2, perSecond: 100 },
        'fast.test': { maxConnections: 2, perSecond: 100 },
        'pace.test': { maxConnections: 4, messagesPerConnection: 1000, perSecond: 1000 },
      },
    });
    h = await startHarness(
      {},
      {
        ...files,
        'dispatcher.shaping.pauseMinSample': 4,
        'dispatcher.shaping.pauseBounceRate': 0.5,
        // Complaint rates use the sending-domain window and sample (no record here names a sending domain).
        'dispatcher.shaping.senderMinSample': 4,
        'dispatcher.shaping.pauseComplaintRate': 0.1,
        'dispatcher.shaping.throttleHoldMs': 1000,
        'dispatcher.shaping.cooldownMs': 5000,
        'dispatcher.shaping.recoverStepMs': 300,
        'dispatcher.fleet.idleTimeoutMs': 60_000,
        // No connections held back for higher priorities: the site's limit is what is measured.
        'dispatcher.fleet.reserveCritical': 0,
        'dispatcher.fleet.reserveTransactional': 0,
        // The fleet's own reaction to a 421 that closes a connection (a ceiling at the size it had)
        // is short here, so what holds the connections down afterwards is the shaper's back-off.
        'dispatcher.fleet.ceilingCooldownMs': 1000,
        'ops.host': '127.0.0.1',
        'ops.port': 0,
      },
      undefined,
      { ops: true },
    );
  });
  after(async () => {
    await h?.close();
    await net?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const outcome = (messageId: string): Promise<EmailEvent> =>
    waitFor(() => h.events().find((e) => e.messageId === messageId && e.type !== 'accepted'), 20_000, `an outcome of ${messageId}`);
  const ops = (p: string, method = 'GET') => fetch(`${h.dispatcher.opsAddress}${p}`, { method });

  test('warm-up cap reached on one address → the other address sends; whole pool capped → deferred (POOL_UNAVAILABLE)', async () => {
    const results: EmailEvent[] = [];
    // One at a time: each send is counted before the next message chooses its address.
    for (let i = 0; i < 8 && !results.some((e) => e.type === 'deferred'); i++) {
      const r = recordFor([`w${i}@warm.test`], { pool: 'warm' });
      await h.produce([r]);
      results.push(await outcome(r.messageId));
    }
    const sent = results.filter((e) => e.type === 'sent');
    const last = results.at(-1)!;
    assert.equal(last.type, 'deferred', JSON.stringify(results.map((e) => e.type)));
    assert.match(last.reason ?? '', /^POOL_UNAVAILABLE/);
    assert.ok(results.slice(0, -1).every((e) => e.type === 'sent'), 'nothing fails while capped addresses are skipped');
    const from3 = warmMx.messagesFrom('127.0.0.3').length;
    const from4 = warmMx.messagesFrom('127.0.0.4').length;
    assert.ok(from3 >= 1 && from3 <= 2, `127.0.0.3 sent ${from3} (cap 2)`);
    assert.ok(from4 >= 1 && from4 <= 3, `127.0.0.4 took over and sent ${from4} (cap 3)`);
    assert.equal(from3 + from4, sent.length);
    // The first message went through the heavily weighted address, the later ones through the other.
    assert.equal(warmMx.messages[0].peer, '127.0.0.3');
    assert.equal(warmMx.messages.at(-1)!.peer, '127.0.0.4');
    const sources = (await (await ops('/v1/sources')).json()) as { warmup: Array<{ source: string; cap: number; sent: number }> };
    const warm = sources.warmup.filter((u) => u.source === '127.0.0.3' || u.source === '127.0.0.4');
    assert.deepEqual(warm.map((u) => [u.source, u.cap]).sort(), [['127.0.0.3', 2], ['127.0.0.4', 3]]);
    assert.ok(warm.every((u) => u.sent >= u.cap), JSON.stringify(warm));
  });

  test('warm-up counts survive a restart: the new dispatcher reads today\'s sent events before it sends', async () => {
    await h.restart();
    const results: EmailEvent[] = [];
    for (let i = 0; i < 8 && !results.some((e) => e.type === 'deferred'); i++) {
      const r = recordFor([`x${i}@warm.test`], { pool: 'warm' });
      await h.produce([r]);
      results.push(await outcome(r.messageId));
    }
    assert.equal(results.at(-1)!.type, 'deferred');
    assert.match(results.at(-1)!.reason ?? '', /^POOL_UNAVAILABLE/);
    // Across both dispatcher runs, neither address went past its cap at the provider.
    assert.ok(warmMx.messagesFrom('127.0.0.3').length <= 2, `127.0.0.3 sent ${warmMx.messagesFrom('127.0.0.3').length} (cap 2)`);
    assert.ok(warmMx.messagesFrom('127.0.0.4').length <= 3, `127.0.0.4 sent ${warmMx.messagesFrom('127.0.0.4').length} (cap 3)`);
  });

  test('a burst routed at once does not overrun a warm-up cap (each message claims its share when routed)', async () => {
    const rs = Array.from({ length: 20 }, (_, i) => recordFor([`b${i}@burst.test`], { pool: 'burst' }));
    await h.produce(rs);
    const got = await Promise.all(rs.map((r) => outcome(r.messageId)));
    const sent = got.filter((e) => e.type === 'sent').length;
    assert.ok(sent >= 1 && sent <= 5, `${sent} sent (cap 5)`);
    assert.ok(got.filter((e) => e.type !== 'sent').every((e) => e.type === 'deferred' && /^POOL_UNAVAILABLE/.test(e.reason ?? '')), JSON.stringify(got.map((e) => [e.type, e.reason])));
    assert.equal(burstMx.messagesFrom('127.0.0.9').length, sent, 'the provider saw what the events say');
  });

  test('unknown-user bounces pause the address (event, metric, ops listing); the ops route resumes it', async () => {
    assert.equal((await ops('/v1/sources/127.0.0.5/resume', 'POST')).status, 404, 'not paused yet');
    for (const to of UNKNOWN.slice(0, 4)) {
      const r = recordFor([to], { pool: 'risky' });
      await h.produce([r]);
      assert.equal((await outcome(r.messageId)).type, 'bounced');
    }
    const held = recordFor(['someone@bad.test'], { pool: 'risky' });
    await h.produce([held]);
    const e = await outcome(held.messageId);
    assert.equal(e.type, 'deferred');
    assert.match(e.reason ?? '', /^POOL_UNAVAILABLE/);
    assert.ok(!badMx.messages.some((m) => m.to.includes('someone@bad.test')), 'a paused address sends nothing');
    assert.equal(await h.metric('postline_source_paused', 'source="127.0.0.5"', 'kind="source"'), 1);
    assert.equal(await h.metric('postline_source_paused', 'source="risky"', 'kind="pool"'), 1);
    const listed = (await (await ops('/v1/sources')).json()) as { paused: Array<{ target: string; kind: string; until: string }> };
    assert.deepEqual(listed.paused.map((p) => `${p.kind}:${p.target}`).sort(), ['pool:risky', 'source:127.0.0.5']);

    const resumed = await ops('/v1/sources/127.0.0.5/resume', 'POST');
    assert.equal(resumed.status, 200);
    assert.deepEqual(await resumed.json(), { resumed: '127.0.0.5', kind: 'source' });
    assert.equal((await ops('/v1/pools/risky/resume', 'POST')).status, 200);
    assert.equal(await h.metric('postline_source_paused', 'source="127.0.0.5"', 'kind="source"'), 0);

    const back = recordFor(['someone-else@bad.test'], { pool: 'risky' });
    await h.produce([back]);
    assert.equal((await outcome(back.messageId)).type, 'sent');
    assert.deepEqual(badMx.messagesFrom('127.0.0.5').map((m) => m.to), [['someone-else@bad.test']]);
  });

  test('a complaint whose ARF report names the address (Source-IP → source) pauses it and its pool; its next message is deferred', async () => {
    for (let i = 0; i < 4; i++) {
      const r = recordFor([`c${i}@complain.test`], { pool: 'complaints' });
      await h.produce([r]);
      assert.equal((await outcome(r.messageId)).type, 'sent');
    }
    assert.equal(complainMx.messagesFrom('127.0.0.8').length, 4);
    // What the inbound service publishes for an ARF report with Source-IP 127.0.0.8 (test/inbound covers that half).
    const complaint: EmailEvent = { schemaVersion: 1, eventId: 'complaint-1', type: 'complained', messageId: 'complained-1', tenant: 'tenant-a', at: new Date().toISOString(), stage: 'inbound', recipients: ['c0@complain.test'], via: 'arf', category: 'abuse', source: '127.0.0.8' };
    await h.producer.send({ topic: Topics.events, acks: -1, messages: [{ key: complaint.messageId, value: EmailEventContract.encode(complaint) }] });
    const paused = await waitFor(() => h.events('paused').find((e) => e.ops?.target === '127.0.0.8'), 20_000, 'the address paused');
    assert.equal(paused.reason, 'complaint-rate');
    assert.ok(h.events('paused').some((e) => e.ops?.scope === 'pool' && e.ops.target === 'complaints'), 'its pool too');
    const held = recordFor(['c9@complain.test'], { pool: 'complaints' });
    await h.produce([held]);
    const e = await outcome(held.messageId);
    assert.equal(e.type, 'deferred');
    assert.match(e.reason ?? '', /^POOL_UNAVAILABLE/);
    assert.equal(complainMx.messagesFrom('127.0.0.8').length, 4, 'nothing more sent through it');
  });

  test('a throttling site (421 4.7.28 after 3 per minute) is slowed down and does not hold up another site', async () => {
    const slow = Array.from({ length: 8 }, (_, i) => recordFor([`s${i}@slow.test`]));
    const fast = Array.from({ length: 8 }, (_, i) => recordFor([`f${i}@fast.test`]));
    await h.produce([...slow, ...fast]);
    for (const r of fast) assert.equal((await outcome(r.messageId)).type, 'sent');
    const slowOutcomes = await Promise.all(slow.map((r) => outcome(r.messageId)));
    assert.ok(slowOutcomes.every((e) => e.type === 'sent' || e.type === 'deferred'), JSON.stringify(slowOutcomes.map((e) => [e.type, e.reason])));
    assert.ok(slowMx.messagesFrom('127.0.0.2').length <= 3, 'the provider took 3 and throttled the rest');
    assert.ok(slowOutcomes.some((e) => e.type === 'deferred'), 'throttled messages wait in the retry tiers');
    assert.ok(slowMx.refusals.some((x) => x.code === 421), 'the provider throttled');
    assert.equal(fastMx.messagesFrom('127.0.0.2').length, 8);
    // The throttled site's limits are lowered; the other site's are not.
    assert.ok((await h.metric('postline_shaping_factor', 'source="127.0.0.2"', 'site="slow.test"')) < 1);
    assert.equal(await h.metric('postline_shaping_factor', 'source="127.0.0.2"', 'site="fast.test"'), 1);
    assert.ok((await h.metric('postline_shaping_throttles_total', 'site="slow.test"')) >= 1);
  });

  test('adaptive back-off closes connections at the MX host; they come back once the site recovers', async () => {
    const src = '127.0.0.6';
    const batch = (tag: string, n: number) => Array.from({ length: n }, (_, i) => recordFor([`${tag}${i}@pace.test`], { pool: 'pace' }));
    const first = batch('a', 16);
    await h.produce(first);
    for (const r of first) assert.equal((await outcome(r.messageId)).type, 'sent');
    assert.equal(paceMx.maxConcurrentConnections(src), 4, 'the site rule: 4 connections');
    assert.equal(paceMx.openConnections(src), 4, 'idle connections stay open');

    pace.throttle = true;
    const throttled = recordFor(['t0@pace.test'], { pool: 'pace' });
    await h.produce([throttled]);
    assert.equal((await outcome(throttled.messageId)).type, 'deferred');
    pace.throttle = false;
    await waitFor(() => paceMx.openConnections(src) <= 2, 10_000, 'connections above the lowered limit closed at the server');

    // While lowered, never more than 2 connections at the server.
    let most = 0;
    const sampler = setInterval(() => (most = Math.max(most, paceMx.openConnections(src))), 2);
    const during = batch('b', 4);
    await h.produce(during);
    for (const r of during) assert.equal((await outcome(r.messageId)).type, 'sent');
    clearInterval(sampler);
    assert.ok(most <= 2, `at most 2 connections while lowered (saw ${most})`);

    // Recovered (cool-down, then doubling steps): the site uses its 4 connections again.
    await waitFor(async () => (await h.metric('postline_shaping_factor', `source="${src}"`, 'site="pace.test"')) === 1, 15_000, 'pace.test recovered');
    const later = batch('c', 16);
    await h.produce(later);
    await waitFor(() => paceMx.openConnections(src) >= 4, 15_000, 'back to 4 connections at the server');
    for (const r of later) assert.equal((await outcome(r.messageId)).type, 'sent');
  });
});
