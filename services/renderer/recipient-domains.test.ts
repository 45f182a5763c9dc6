import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { groupByDomain, parseEnvelopeAddress, type EnvelopeAddress } from './recipient-domains.js';

describe('parseEnvelopeAddress', () => {
  const valid: Array<[string, string, string]> = [
    ['alice@example.org', 'alice', 'example.org'],
    ['Alice@EXAMPLE.Org', 'Alice', 'example.org'], // local part keeps its case, domain folds
    ['jörg@bücher.de', 'jörg', 'xn--bcher-kva.de'], // IDN → punycode; UTF-8 local part kept (SMTPUTF8)
    ['x@BÜCHER.DE', 'x', 'xn--bcher-kva.de'],
    ['x@xn--bcher-kva.de', 'x', 'xn--bcher-kva.de'],
    ['x@ＥＸＡＭＰＬＥ.com', 'x', 'example.com'], // full-width letters normalised (UTS #46)
    ['first.last+tag@mail.example.co.uk', 'first.last+tag', 'mail.example.co.uk'],
    ['x@example.org.', 'x', 'example.org'], // trailing root dot dropped
    ['x@localhost', 'x', 'localhost'],
  ];
  for (const [input, local, domain] of valid) {
    test(`${input} → ${local}@${domain}`, () => {
      assert.deepEqual(parseEnvelopeAddress(input), { local, domain, address: `${local}@${domain}` });
    });
  }

  const invalid = ['no-at-sign', '@example.org', 'x@', 'a b@example.org', 'x@exa mple.org', 'x@-bad.example', 'x@[127.0.0.1]', 'x@a..b', '.x@example.org', 'x.@example.org', 'a..b@example.org', '"q"@example.org', 'x@exa_mple.org', `${'l'.repeat(65)}@example.org`, 'x@%41.example'];
  for (const input of invalid) {
    test(`rejects ${JSON.stringify(input)}`, () => assert.equal(parseEnvelopeAddress(input), undefined));
  }
});

describe('groupByDomain', () => {
  const parse = (list: string[]): EnvelopeAddress[] => list.map((a) => parseEnvelopeAddress(a)!);
  const cases: Array<{ name: string; input: string[]; expect: Array<[string, string[]]> }> = [
    {
      name: 'two gmail recipients and one example.org → two groups, first-seen order',
      input: ['a@gmail.com', 'c@example.org', 'b@gmail.com'],
      expect: [
        ['gmail.com', ['a@gmail.com', 'b@gmail.com']],
        ['example.org', ['c@example.org']],
      ],
    },
    {
      name: 'domains differing only in case are one domain',
      input: ['a@Example.ORG', 'b@example.org'],
      expect: [['example.org', ['a@example.org', 'b@example.org']]],
    },
    {
      name: 'an IDN domain and its punycode form are one domain',
      input: ['a@bücher.de', 'b@xn--bcher-kva.de'],
      expect: [['xn--bcher-kva.de', ['a@xn--bcher-kva.de', 'b@xn--bcher-kva.de']]],
    },
    {
      name: 'the same address twice (to and cc) gets one RCPT TO',
      input: ['a@example.org', 'A@EXAMPLE.org', 'a@example.org'],
      expect: [['example.org', ['a@example.org', 'A@example.org']]],
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      assert.deepEqual(
        groupByDomain(parse(c.input)).map((g) => [g.domain, g.recipients]),
        c.expect,
      );
    });
  }
});
