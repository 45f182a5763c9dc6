/**
 * mx-connect on the fake internet: MX lookup through `dns.callbackResolver()`, a connection from
 * a pool source address to the MX host on the shared SMTP port, and MTA-STS (mailauth's
 * getPolicy inside mx-connect) refusing an MX host the policy does not list.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import type net from 'node:net';
import { waitFor } from '../helpers/broker.js';
import { startFakeInternet, type FakeInternet } from '../helpers/fake-internet/index.js';

interface MxConnection {
  socket: net.Socket;
  hostname: string;
  host: string;
  port: number;
  localAddress: string;
}
// mx-connect ships no types; only what this test calls
const mxConnect = createRequire(import.meta.url)('mx-connect') as (options: Record<string, unknown>) => Promise<MxConnection>;

describe('mx-connect on the fake internet', () => {
  let net!: FakeInternet;
  before(async () => {
    net = await startFakeInternet();
  });
  after(() => net.close());

  const policyCache = (): { get: (d: string) => Promise<unknown>; set: (d: string, p: unknown) => Promise<void> } => {
    const cache = new Map<string, unknown>();
    return { get: async (d) => cache.get(d), set: async (d, p) => void cache.set(d, p) };
  };

  test('resolves the MX in the fake DNS and connects from the pool address; MTA-STS enforce refuses an unlisted MX', async () => {
    const primary = await net.smtp({ host: '127.0.0.20', name: 'mx1.mxc.test', mxFor: 'mxc.test' });
    const other = await net.smtp({ host: '127.0.0.21', name: 'mx.elsewhere.test' });
    assert.equal(other.port, primary.port, 'every fake MX host listens on the shared SMTP port');
    assert.equal(primary.port, net.smtpPort);

    const undo = net.trustInProcess();
    try {
      await net.mtaSts('mxc.test', { mode: 'enforce', mx: ['mx1.mxc.test'], maxAge: 3600 });
      const conn = await mxConnect({
        target: 'ann@mxc.test',
        port: net.smtpPort,
        localAddress: '127.0.0.2',
        maxConnectTime: 3000,
        dnsOptions: { resolve: net.dns.callbackResolver(), blockLocalAddresses: false },
        mtaSts: { enabled: true, cache: policyCache() },
      });
      assert.equal(conn.hostname, 'mx1.mxc.test');
      assert.equal(conn.host, '127.0.0.20');
      assert.equal(conn.localAddress, '127.0.0.2');
      conn.socket.destroy();
      await waitFor(() => primary.connections('127.0.0.2') === 1, 5000, 'the connection at the MX host');
      assert.equal(net.mtaStsServer!.fetchesFor('mxc.test').length, 1);

      net.dns.mx('mxc.test', [{ exchange: 'mx.elsewhere.test', priority: 10 }]);
      net.dns.a('mx.elsewhere.test', '127.0.0.21');
      await assert.rejects(
        mxConnect({
          target: 'ann@mxc.test',
          port: net.smtpPort,
          localAddress: '127.0.0.2',
          maxConnectTime: 3000,
          dnsOptions: { resolve: net.dns.callbackResolver(), blockLocalAddresses: false },
          mtaSts: { enabled: true, cache: policyCache() },
        }),
        /MTA-STS|policy/i,
      );
      assert.equal(other.connections(), 0, 'the unlisted MX host was never contacted');
    } finally {
      undo();
    }
  });
});
