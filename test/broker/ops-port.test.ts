/**
 * `postline broker --ops-port`: the broker process serves its Prometheus metrics (requests,
 * records in, fsync time) and its health on a port of its own, and stops it with the broker.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnBrokerProcess, tempDir, uniqueName, waitFor } from '../helpers/broker.js';
import { testKafka } from './support/kafkajs-clients.js';

test('--ops-port serves /metrics, /healthz and /readyz; the metrics count what the broker did', async () => {
  const b = await spawnBrokerProcess({ dataDir: tempDir('broker-ops'), args: ['--ops-port', '0'] });
  try {
    const line = await waitFor(() => b.output().split('\n').find((l) => l.includes('broker operations server listening')), 10_000, 'the ops server to listen');
    const ops = (JSON.parse(line) as { ops: string }).ops;
    assert.match(ops, /^http:\/\/127\.0\.0\.1:\d+$/);
    const topic = uniqueName('ops');
    const producer = testKafka(b.bootstrap).producer();
    await producer.connect();
    await producer.send({ topic, acks: -1, messages: [{ value: 'a' }, { value: 'b' }] });
    await producer.disconnect();

    const metrics = await (await fetch(`${ops}/metrics`)).text();
    assert.match(metrics, new RegExp(`^postline_broker_records_in_total\\{topic="${topic}"\\} 2$`, 'm'));
    assert.match(metrics, /^postline_broker_requests_total\{api="Produce"\} \d+$/m);
    assert.match(metrics, /^postline_broker_fsync_seconds_count \d+$/m);
    for (const path of ['/healthz', '/readyz']) assert.equal((await fetch(`${ops}${path}`)).status, 200, path);
  } finally {
    assert.deepEqual(await b.kill('SIGTERM'), { code: 0, signal: null }, 'a clean stop closes the ops server too');
  }
});

test('--ops-port must be a port', async () => {
  await assert.rejects(spawnBrokerProcess({ dataDir: tempDir('broker-ops-bad'), args: ['--ops-port', 'x'], timeoutMs: 10_000 }), /--ops-port must be 0-65535 \(got "x"\)/);
});
