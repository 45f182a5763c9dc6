import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { detectMachine, type HitContext } from './machine-detection.js';
import { parseCidrs, truncateIp } from './client-ip.js';

const rules = { appleProxyRanges: parseCidrs(['17.0.0.0/8']), withinSeconds: 2, clickBurstMs: 1000 };
const ISSUED = 1_780_000_000;
const LATER = ISSUED * 1000 + 3_600_000;
const CHROME = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
const hit = (over: Partial<HitContext>): HitContext => ({ kind: 'open', method: 'GET', userAgent: CHROME, ip: '203.0.113.9', issuedAt: ISSUED, nowMs: LATER, linkIndex: 0, ...over });

describe('machine detection', () => {
  const cases: Array<[string, Partial<HitContext>, string | undefined]> = [
    ['a browser an hour later', {}, undefined],
    ['Apple Mail itself (not the proxy)', { userAgent: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)' }, undefined],
    ['Outlook desktop', { userAgent: 'Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.4266; Pro)' }, undefined],
    ['Gmail image proxy (fetches when viewed)', { userAgent: 'Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)' }, undefined],
    ['Yahoo mail proxy', { userAgent: 'YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html' }, undefined],
    ['HEAD request', { method: 'HEAD' }, 'head-request'],
    ['Apple MPP user agent', { userAgent: 'Mozilla/5.0' }, 'apple-mpp'],
    ['Apple MPP address', { ip: '17.58.101.20' }, 'apple-mpp'],
    ['Apple address, IPv4-mapped IPv6', { ip: '::ffff:17.58.101.20' }, 'apple-mpp'],
    ['a click from an Apple address is not MPP', { kind: 'click', ip: '17.58.101.20' }, undefined],
    ['a scanner', { userAgent: 'Barracuda Sentinel (EE)' }, 'user-agent'],
    ['curl', { userAgent: 'curl/8.5.0' }, 'user-agent'],
    ['no user agent', { userAgent: '' }, 'no-user-agent'],
    ['within 2 s of sending', { nowMs: ISSUED * 1000 + 1500 }, 'too-soon'],
    ['3 s after sending', { nowMs: ISSUED * 1000 + 3000 }, undefined],
    ['another link 200 ms after a click', { kind: 'click', linkIndex: 2, previousClick: { atMs: LATER - 200, linkIndex: 1 } }, 'click-burst'],
    ['the same link clicked twice quickly (a double click)', { kind: 'click', linkIndex: 1, previousClick: { atMs: LATER - 200, linkIndex: 1 } }, undefined],
    ['another link 5 s later', { kind: 'click', linkIndex: 2, previousClick: { atMs: LATER - 5000, linkIndex: 1 } }, undefined],
  ];
  for (const [name, over, reason] of cases) {
    test(name, () => {
      const v = detectMachine(hit(over), rules);
      assert.deepEqual(v, reason ? { machine: true, reason } : { machine: false });
    });
  }

  test('rules at 0 are off', () => {
    const off = { appleProxyRanges: [], withinSeconds: 0, clickBurstMs: 0 };
    assert.deepEqual(detectMachine(hit({ nowMs: ISSUED * 1000 }), off), { machine: false });
    assert.deepEqual(detectMachine(hit({ kind: 'click', linkIndex: 2, previousClick: { atMs: LATER, linkIndex: 1 } }), off), { machine: false });
    assert.deepEqual(detectMachine(hit({ ip: '17.1.1.1' }), off), { machine: false });
  });
});

describe('client address truncation', () => {
  const cases: Array<[string | undefined, string]> = [
    ['203.0.113.77', '203.0.113.0'],
    ['::ffff:198.51.100.200', '198.51.100.0'],
    ['2001:db8:abcd:1234:5678::1', '2001:db8:abcd::'],
    ['::1', '::'],
    ['not-an-ip', ''],
    [undefined, ''],
  ];
  for (const [ip, want] of cases) test(`${ip} → ${want || "''"}`, () => assert.equal(truncateIp(ip), want));

  test('a bad range is refused naming it', () => assert.throws(() => parseCidrs(['17.0.0.0/8', '17.0.0/33']), /"17\.0\.0\/33"/));
});
