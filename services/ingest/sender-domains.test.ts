import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ANY_SENDER_DOMAIN, configuredSenderDomains, senderDomainProblem } from './sender-domains.js';

test('sender domains: unlisted tenants may use any domain; listed ones only theirs (exact or *.subdomain), case-insensitively', () => {
  const policy = configuredSenderDomains({ acme: ['acme.com', '*.mail.acme.com', 'BÜCHER.de'], locked: [] });
  const cases: Array<[string, string, boolean]> = [
    ['acme', 'news@acme.com', true],
    ['acme', 'news@ACME.COM', true],
    ['acme', 'x@eu.mail.acme.com', true],
    ['acme', 'x@mail.acme.com', false],
    ['acme', 'x@notacme.com', false],
    ['acme', 'x@acme.com.evil.org', false],
    ['acme', 'x@xn--bcher-kva.de', true],
    ['acme/eu', 'x@anything.org', true],
    ['globex', 'x@acme.com', true],
    ['locked', 'x@locked.org', false],
  ];
  for (const [tenant, email, allowed] of cases) assert.equal(senderDomainProblem(policy, tenant, email) === undefined, allowed, `${tenant} ${email}`);
  assert.match(senderDomainProblem(policy, 'acme', 'x@other.org') ?? '', /"other\.org".*acme\.com/);
  assert.equal(senderDomainProblem(ANY_SENDER_DOMAIN, 'acme', 'x@other.org'), undefined);
});
