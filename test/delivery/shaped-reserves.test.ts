/**
 * Fleet reserves at a shaped site's small connection cap (issue 12): with the default reserves
 * (4 for critical, 2 more for transactional) and a site capped at 5 connections, transactional
 * mail must not be squeezed onto a single connection. Measured at the fake provider.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startFakeInternet, type FakeInternet, type FakeSmtpServer } from '../helpers/fake-internet/index.js';
import { startHarness, type Harness } from '../dispatcher/dispatcher-harness.js';
import { recordFor } from '../dispatcher/fleet-support.js';
import { writeDeliveryFiles } from './delivery-files.js';

let net: FakeInternet;
let h: Harness;
let dir: string;
let mx: FakeSmtpServer;

before(async () => {
  net = await startFakeInternet();
  // Slow replies keep connections busy, so messages side by side need connections side by side.
  mx = await net.smtp({ mxFor: 'capped.test', script: { replyDelayMs: 50 } });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'postline-shaped-reserves-'));
  const files = writeDeliveryFiles(dir, net, { sites: { 'capped.test': { maxConnections: 5, messagesPerConnection: 1000, perSecond: 1000 } } });
  // The fleet's reserves are the defaults (reserveCritical 4, reserveTransactional 2).
  h = await startHarness({}, files);
});
after(async () => {
  await h?.close();
  await net?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('a site capped at 5 connections serves transactional mail over more than one connection (default reserves)', async () => {
  const records = Array.from({ length: 24 }, (_, i) => recordFor([`t${i}@capped.test`], { priority: 'transactional' }));
  await h.produce(records);
  const sent = await h.waitForEvents(records.length, 'sent', 30_000);
  assert.equal(sent.length, records.length);
  const most = mx.maxConcurrentConnections('127.0.0.2');
  // Critical keeps one connection of its own (5 × 1/3 → 1 each for critical and transactional).
  assert.ok(most > 1, `transactional used ${most} connection(s) at once`);
  assert.ok(most <= 4, `at most 4 of the site's 5 connections for transactional (saw ${most})`);
});
