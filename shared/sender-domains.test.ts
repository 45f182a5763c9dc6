import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ANY_SENDER_DOMAIN, configuredSenderDomains, inboundDomainProblem, senderDomainProblem } from './sender-domains.js';

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

test('inbound domains: a tenant with sender domains claims those and their subdomains only; an unlisted tenant any', () => {
  const policy = configuredSenderDomains({ acme: ['acme.test', '*.mail.acme-corp.test'], 'acme/eu': ['eu.acme.test'], empty: [] });
  assert.equal(inboundDomainProblem(policy, 'acme', 'acme.test'), undefined);
  assert.equal(inboundDomainProblem(policy, 'acme', 'inbound.acme.test'), undefined);
  assert.equal(inboundDomainProblem(policy, 'acme', 'in.mail.acme-corp.test'), undefined);
  assert.match(inboundDomainProblem(policy, 'acme', 'mail.acme-corp.test') ?? '', /not one of this tenant's sender domains/, 'a wildcard entry covers subdomains only');
  assert.match(inboundDomainProblem(policy, 'acme', 'xacme.test') ?? '', /not one of/, 'a suffix is not a subdomain');
  assert.match(inboundDomainProblem(policy, 'acme', 'acme.test.evil.test') ?? '', /not one of/);
  assert.match(inboundDomainProblem(policy, 'acme/eu', 'inbound.acme.test') ?? '', /eu\.acme\.test/, 'acme/eu gets nothing of acme');
  assert.equal(inboundDomainProblem(policy, 'acme/eu', 'in.eu.acme.test'), undefined);
  assert.match(inboundDomainProblem(policy, 'empty', 'any.test') ?? '', /no sender domains yet/);
  assert.equal(inboundDomainProblem(policy, 'other', 'acme.test'), undefined, 'unlisted: the open default');
  assert.equal(inboundDomainProblem(ANY_SENDER_DOMAIN, 'acme', 'evil.test'), undefined);
});
