import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { launcherFeedbackAddresses, launcherFeedbackKeys, FEEDBACK_KEY_FILE } from './launcher-feedback.js';
import { loadPostlineConfig } from '../../shared/config.js';

const feedback = (overrides: Record<string, unknown> = {}) => loadPostlineConfig({ env: {}, overrides }).feedback;

test('a key is generated once into the data dir (0600) and reused after a restart', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'postline-fb-'));
  try {
    const first = JSON.parse(launcherFeedbackKeys(feedback(), dir).POSTLINE_FEEDBACK_KEYS!);
    assert.equal(first.length, 1);
    assert.ok(first[0].secret.length >= 32);
    assert.equal(fs.statSync(path.join(dir, FEEDBACK_KEY_FILE)).mode & 0o777, 0o600);
    assert.deepEqual(JSON.parse(launcherFeedbackKeys(feedback(), dir).POSTLINE_FEEDBACK_KEYS!), first);
    // The generated key passes the config schema the stages validate with.
    assert.equal(loadPostlineConfig({ env: { POSTLINE_FEEDBACK_KEYS: JSON.stringify(first) } }).feedback.keys[0].id, 1);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the user\'s own keys are kept and none is generated', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'postline-fb-'));
  try {
    const mine = [{ id: 7, secret: 'm'.repeat(40) }];
    assert.deepEqual(JSON.parse(launcherFeedbackKeys(feedback({ 'feedback.keys': mine }), dir).POSTLINE_FEEDBACK_KEYS!), mine);
    assert.equal(fs.existsSync(path.join(dir, FEEDBACK_KEY_FILE)), false);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('local return path and unsubscribe URL only while mail goes to the capture server; configured values always win', () => {
  assert.deepEqual(launcherFeedbackAddresses(feedback(), true, '8080'), { returnPathDomain: 'bounces.localhost', unsubscribeUrl: 'http://127.0.0.1:8080' });
  // Through a real relay: nothing a relay would refuse, no loopback link in real inboxes.
  assert.deepEqual(launcherFeedbackAddresses(feedback(), false, '8080'), { returnPathDomain: '', unsubscribeUrl: '' });
  const mine = feedback({ 'feedback.returnPathDomain': 'bounces.example.com', 'feedback.unsubscribeUrl': 'https://mail.example.com' });
  for (const capturing of [true, false]) {
    assert.deepEqual(launcherFeedbackAddresses(mine, capturing, '8080'), { returnPathDomain: 'bounces.example.com', unsubscribeUrl: 'https://mail.example.com' });
  }
});
