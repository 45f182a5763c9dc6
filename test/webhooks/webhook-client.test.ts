/**
 * The webhook HTTP client against a real server on loopback: the SSRF guard at connect time (a
 * host whose answer is not allowed is never connected to, nor a literal IP outside the allow
 * list), redirects not followed, the response size cap and the header deadline.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SsrfGuard } from '../../shared/http/ssrf-guard.js';
import { WebhookClient } from '../../services/webhooks/webhook-client.js';

const seen: string[] = [];
const server = http.createServer((req, res) => {
  seen.push(req.url ?? '');
  req.resume();
  req.on('end', () => {
    if (req.url === '/redirect') return res.writeHead(302, { location: '/ok' }).end();
    if (req.url === '/big') return res.writeHead(200).end(Buffer.alloc(256 * 1024, 120));
    if (req.url === '/big-chunked') {
      res.writeHead(200, { 'transfer-encoding': 'chunked' });
      for (let i = 0; i < 64; i++) res.write(Buffer.alloc(4096, 120));
      return res.end();
    }
    if (req.url === '/slow') return void setTimeout(() => res.writeHead(200).end(), 3000).unref();
    res.writeHead(200).end('{}');
  });
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const port = (server.address() as AddressInfo).port;
after(() => {
  server.closeAllConnections();
  server.close();
});

const guard = new SsrfGuard({ allow: ['127.0.0.1'], allowHttp: true, resolve: async (h) => (h === 'good.test' ? ['127.0.0.1'] : ['127.0.0.2']) });
const client = new WebhookClient({ guard, timeoutMs: 500, connectTimeoutMs: 1000, maxResponseBytes: 1024 });
after(() => client.close());

test('allowed by its resolved address: delivered', async () => {
  const r = await client.post(`http://good.test:${port}/ok`, '{}', {});
  assert.equal(r.ok, true, r.error);
  assert.equal(r.status, 200);
});

test('the path and query of the URL are sent as they are; the signed headers with the client\'s own', async () => {
  let got: http.IncomingHttpHeaders | undefined;
  let gotUrl: string | undefined;
  let gotBody = '';
  const before = seen.length;
  const probe = http.createServer((req, res) => {
    got = req.headers;
    gotUrl = req.url;
    req.setEncoding('utf8').on('data', (c: string) => (gotBody += c));
    req.on('end', () => res.writeHead(204).end());
  });
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  try {
    const r = await client.post(`http://127.0.0.1:${(probe.address() as AddressInfo).port}/hooks/a%20b?tenant=acme&x=1#frag`, '{"a":1}', { 'webhook-id': 'msg_1', 'webhook-signature': 'v1,abc' });
    assert.equal(r.ok, true, r.error);
    assert.equal(r.status, 204);
  } finally {
    probe.closeAllConnections();
    probe.close();
  }
  assert.equal(seen.length, before);
  assert.equal(gotUrl, '/hooks/a%20b?tenant=acme&x=1');
  assert.equal(gotBody, '{"a":1}');
  assert.equal(got?.['webhook-id'], 'msg_1');
  assert.equal(got?.['webhook-signature'], 'v1,abc');
  assert.equal(got?.['content-type'], 'application/json');
  assert.equal(got?.['user-agent'], 'Postline-Webhooks/1');
});

test('a host resolving to an address outside the allow list is never connected to; nor a literal one', async () => {
  const before = seen.length;
  const r = await client.post(`http://rebound.test:${port}/ok`, '{}', {});
  assert.equal(r.ok, false);
  assert.equal(r.refused, true);
  assert.match(r.error!, /SSRF_REFUSED|refused/);
  const literal = await client.post(`http://127.0.0.2:${port}/ok`, '{}', {});
  assert.equal(literal.refused, true);
  const https = new WebhookClient({ guard: new SsrfGuard({ allow: ['127.0.0.1'] }), timeoutMs: 500, connectTimeoutMs: 1000, maxResponseBytes: 1024 });
  const plain = await https.post(`http://127.0.0.1:${port}/ok`, '{}', {});
  await https.close();
  assert.equal(plain.refused, true, 'http refused unless allowed, also when the URL did not come through the API');
  assert.equal(seen.length, before, 'no request reached the server');
});

test('a redirect is a failed attempt and is not followed; a large response fails; a slow one times out', async () => {
  const before = seen.length;
  const r = await client.post(`http://127.0.0.1:${port}/redirect`, '{}', {});
  assert.equal(r.ok, false);
  assert.equal(r.status, 302);
  assert.deepEqual(seen.slice(before), ['/redirect']);
  const big = await client.post(`http://127.0.0.1:${port}/big`, '{}', {});
  assert.equal(big.ok, false);
  assert.match(big.error!, /size|RESPONSE_EXCEEDED|TOO_LARGE/i);
  const chunked = await client.post(`http://127.0.0.1:${port}/big-chunked`, '{}', {});
  assert.equal(chunked.ok, false, 'a chunked answer over the cap fails too');
  assert.match(chunked.error!, /size|RESPONSE_EXCEEDED|TOO_LARGE/i);
  assert.equal((await client.post(`http://127.0.0.1:${port}/ok`, '{}', {})).ok, true, 'the client still works after');
  const slow = await client.post(`http://127.0.0.1:${port}/slow`, '{}', {});
  assert.equal(slow.ok, false);
  assert.match(slow.error!, /timeout/i);
  assert.ok(slow.latencyMs < 2500);
});
