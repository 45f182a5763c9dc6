/**
 * The fake internet's HTTP receiver (webhook endpoint): records method, path, headers and body,
 * answers with scripted statuses, optionally late, and closes with requests still pending.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeInternet, type FakeInternet } from '../helpers/fake-internet/index.js';

describe('fake HTTP receiver', () => {
  let net!: FakeInternet;
  before(async () => {
    net = await startFakeInternet();
  });
  after(() => net.close());

  test('records requests and answers as scripted, with delays', async () => {
    const hook = await net.http({ respond: (req, i) => (i === 0 ? 503 : { status: 200, body: `ok ${req.path}`, headers: { 'x-seen': String(i) }, delayMs: i === 2 ? 200 : 0 }) });
    const post = (path: string, body: string): Promise<Response> =>
      fetch(`${hook.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'webhook-id': 'msg_1' }, body });

    assert.equal((await post('/hooks/a', '{"n":1}')).status, 503);
    const second = await post('/hooks/a?x=1', '{"n":2}');
    assert.equal(second.status, 200);
    assert.equal(await second.text(), 'ok /hooks/a?x=1');
    assert.equal(second.headers.get('x-seen'), '1');
    const started = Date.now();
    assert.equal((await post('/hooks/b', '{"n":3}')).status, 200);
    assert.ok(Date.now() - started >= 190, 'the third answer came 200 ms late');

    const requests = await hook.waitForRequests(3);
    assert.deepEqual(
      requests.map((r) => [r.method, r.path, r.headers['webhook-id'], r.headers['content-type'], r.body.toString()]),
      [
        ['POST', '/hooks/a', 'msg_1', 'application/json', '{"n":1}'],
        ['POST', '/hooks/a?x=1', 'msg_1', 'application/json', '{"n":2}'],
        ['POST', '/hooks/b', 'msg_1', 'application/json', '{"n":3}'],
      ],
    );

    hook.respond(() => 410);
    assert.equal((await fetch(hook.url)).status, 410, 'the script can change between requests');
  });

  test('close() returns while an answer is still delayed', async () => {
    const hook = await net.http({ respond: () => ({ status: 200, delayMs: 60_000 }) });
    const pending = fetch(`${hook.url}/slow`).then(
      () => 'answered',
      () => 'dropped',
    );
    await hook.waitForRequests(1);
    const started = Date.now();
    await hook.close();
    assert.ok(Date.now() - started < 2000);
    assert.equal(await pending, 'dropped');
  });
});
