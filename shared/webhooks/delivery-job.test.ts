import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nextTier, webhookRetryTopic, WEBHOOK_RETRY_TOPICS } from './delivery-job.js';

test('after n failed attempts the delivery waits 5 s, 1 m, 10 m, 1 h, 6 h, 24 h, then is given up', () => {
  const table: Array<[number, string | undefined]> = [[1, '5s'], [2, '1m'], [3, '10m'], [4, '1h'], [5, '6h'], [6, '24h'], [7, undefined], [0, undefined]];
  for (const [attempts, tier] of table) assert.equal(nextTier(attempts)?.name, tier, `after ${attempts}`);
  assert.equal(webhookRetryTopic('5s'), 'email.webhooks.retry.5s');
  assert.equal(WEBHOOK_RETRY_TOPICS.length, 6);
});
