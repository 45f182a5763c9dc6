/**
 * Site keys in the dispatcher (issue 12, "limits are exact across dispatcher replicas"): an
 * mx-route record keyed by its domain while its site is split into shards is produced again
 * once, under its shard's key, and sent only from there; a record under a shard's key is shaped
 * with that shard's share of the site's limits (rates / n, connections split), while events and
 * metric labels name the site. Checked at the fake provider and on the dispatch topic itself.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { waitFor } from '../helpers/broker.js';
import { startFakeInternet, type FakeInternet, type FakeSmtpServer } from '../helpers/fake-internet/index.js';
import { startHarness, type Harness } from '../dispatcher/dispatcher-harness.js';
import { recordFor } from '../dispatcher/fleet-support.js';
import { writeDeliveryFiles } from './delivery-files.js';
import { TopicReader } from '../helpers/topic-reader.js';
import { EmailReadyForDispatchContract } from '../../shared/contracts/email-ready-for-dispatch.js';
import { Topics } from '../../shared/topics.js';
import type { TrafficShaper } from '../../services/dispatcher/shaping/shaper.js';
import { shardOf } from '../../services/dispatcher/shaping/site-shards.js';

describe('site shard keys in the dispatcher (fake internet)', () => {
  let net: FakeInternet;
  let h: Harness;
  let dir: string;
  let mx: FakeSmtpServer;
  let dispatchTopic: TopicReader;
  const rekeys: Array<{ priority: string; site: string }> = [];

  before(async () => {
    net = await startFakeInternet();
    // One provider for two domains: its site is `hot.test` (the MX host's registrable domain).
    mx = await net.smtp({ mxFor: ['hot.test', 'customer.test'] });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'postline-site-shards-'));
    const files = writeDeliveryFiles(dir, net, { sites: { 'hot.test': { maxConnections: 5, messagesPerConnection: 100, perSecond: 40, shards: 2 } } });
    h = await startHarness({}, files);
    dispatchTopic = await new TopicReader(h.broker.bootstrap, [Topics.dispatch('transactional')]).start();
    h.dispatcher.handler.on('rekey', (priority: string, site: string) => rekeys.push({ priority, site }));
  });
  after(async () => {
    await dispatchTopic?.stop();
    await h?.close();
    await net?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Keys of the dispatch records of `messageId`, once at least `n` of them are on the topic. */
  const keysOnTopic = async (messageId: string, n: number): Promise<string[]> => {
    const keys = () => dispatchTopic.records.filter((r) => EmailReadyForDispatchContract.decode(r.message.value).messageId === messageId).map((r) => r.message.key?.toString('utf8') ?? '');
    await waitFor(() => keys().length >= n || undefined, 20_000, `${n} dispatch records of ${messageId}`);
    return keys();
  };

  test('a record keyed by its domain is produced again once under its shard key, and sent once from there', async () => {
    const r = recordFor(['someone@customer.test']);
    await h.produce([r]); // keyed by domain: `customer.test`
    const sent = await waitFor(() => h.events('sent').find((e) => e.messageId === r.messageId), 20_000, 'the sent event');
    const shard = `hot.test#${shardOf(r.messageId, 2)}`;
    assert.deepEqual(rekeys, [{ priority: 'transactional', site: 'hot.test' }]);
    assert.deepEqual(await keysOnTopic(r.messageId, 2), ['customer.test', shard]);
    assert.equal(mx.messages.filter((m) => m.raw.includes(r.messageId)).length, 1, 'delivered once');
    assert.equal(sent.site, 'hot.test', 'events name the site, not the shard');
    assert.equal(h.events().filter((e) => e.messageId === r.messageId && e.type !== 'accepted').length, 1, 'one outcome');
    assert.equal(await h.metric('postline_dispatch_rekeyed_total', 'transactional'), 1);
  });

  test('a record under its shard key is sent at once, under the shard\'s share of the limits', async () => {
    const r = recordFor(['someone@hot.test']);
    const k = shardOf(r.messageId, 2);
    const shard = `hot.test#${k}`;
    await h.producer.send({ topic: Topics.dispatch('transactional'), messages: [{ key: shard, value: EmailReadyForDispatchContract.encode(r) }] });
    const sent = await waitFor(() => h.events('sent').find((e) => e.messageId === r.messageId), 20_000, 'the sent event');
    assert.equal(sent.site, 'hot.test');
    assert.equal(rekeys.length, 1, 'not produced again');
    assert.deepEqual(await keysOnTopic(r.messageId, 1), [shard]);
    // 5 connections over 2 shards: 3 + 2; 40/s: 20/s each.
    const limits = (h.dispatcher.shaper as TrafficShaper).current().find((c) => c.site === shard);
    assert.deepEqual(limits && { perSecond: limits.perSecond, maxConnections: limits.maxConnections }, { perSecond: 20, maxConnections: k === 0 ? 3 : 2 });
    assert.equal(h.dispatcher.budgets.get(`127.0.0.2\u0000${shard}`)?.max, k === 0 ? 3 : 2, 'the shard\'s connection budget');
    assert.equal(h.dispatcher.budgets.get('127.0.0.2\u0000hot.test'), undefined, 'no budget of the whole site on this replica');
  });
});
