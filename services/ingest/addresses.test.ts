import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAddress, type AddressInput } from './addresses.js';

test('accepted address forms normalize to the envelope form and keep the display name', () => {
  const cases: Array<[AddressInput, { email: string; name?: string }]> = [
    ['a@example.com', { email: 'a@example.com' }],
    ['  a@example.com ', { email: 'a@example.com' }],
    ['Ann <ann@example.com>', { email: 'ann@example.com', name: 'Ann' }],
    ['"Doe, John" <j.doe+tag@Example.COM>', { email: 'j.doe+tag@example.com', name: 'Doe, John' }],
    [{ email: 'b@example.org', name: 'Bo' }, { email: 'b@example.org', name: 'Bo' }],
    [{ email: 'b@example.org', name: '  ' }, { email: 'b@example.org' }],
    // IDN: punycode for the envelope; the Unicode name is kept as given.
    ['Jürgen <j@bücher.de>', { email: 'j@xn--bcher-kva.de', name: 'Jürgen' }],
    [{ email: 'info@例え.jp' }, { email: 'info@xn--r8jz45g.jp' }],
    ["o'hara@sub.example.co.uk", { email: "o'hara@sub.example.co.uk" }],
  ];
  for (const [input, expected] of cases) {
    const r = parseAddress(input);
    assert.ok(r.ok, `${JSON.stringify(input)}: ${r.ok ? '' : r.message}`);
    assert.deepEqual(r.address, expected, JSON.stringify(input));
  }
});

test('invalid addresses and header injection are refused with a reason', () => {
  const cases: Array<[AddressInput, RegExp]> = [
    ['a@example.com\r\nBcc: victim@example.org', /CR, LF or NUL/],
    ['Name\n <a@example.com>', /CR, LF or NUL/],
    [{ email: 'a@example.com', name: 'x\r\nBcc: v@example.org' }, /CR, LF or NUL/],
    [{ email: 'a@exa\u0000mple.com' }, /CR, LF or NUL/],
    ['not an address', /not an email address|not an address/],
    ['a@b.c, d@e.f', /single address/],
    ['a@localhost', /invalid domain/],
    ['a@[127.0.0.1]', /address literals/],
    ['a@1.2.3.4', /invalid domain/],
    ['a@-bad-.com', /invalid domain/],
    ['a@exa_mple.com', /invalid domain/],
    ['a..b@example.com', /local part/],
    ['ü@example.com', /local part/],
    [{ email: '@example.com' }, /not an email address/],
    [{ email: `${'x'.repeat(65)}@example.com` }, /local part/],
    [{ email: 'a@example.com', name: 'n'.repeat(201) }, /longer than 200/],
  ];
  for (const [input, reason] of cases) {
    const r = parseAddress(input);
    assert.equal(r.ok, false, JSON.stringify(input));
    if (!r.ok) assert.match(r.message, reason, JSON.stringify(input));
  }
});
