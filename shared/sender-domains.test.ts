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

test('sender domains: tenants whose names prefix each other (acme, acme/eu) each get only their own list', () => {
  const policy = configuredSenderDomains({ acme: ['acme.com'], 'acme/eu': ['acme.eu'] });
  assert.equal(senderDomainProblem(policy, 'acme', 'x@acme.com'), undefined);
  assert.match(senderDomainProblem(policy, 'acme', 'x@acme.eu') ?? '', /"acme\.eu" is not one of this tenant's sender domains \(acme\.com\)/);
  assert.equal(senderDomainProblem(policy, 'acme/eu', 'x@acme.eu'), undefined);
  assert.match(senderDomainProblem(policy, 'acme/eu', 'x@acme.com') ?? '', /"acme\.com".*\(acme\.eu\)/);
  // Neither list leaks into a third tenant whose name extends both.
  assert.equal(senderDomainProblem(policy, 'acme/eu/de', 'x@anything.org'), undefined);
});
