import { test } from 'node:test';
import assert from 'node:assert/strict';
import { acceptsLocalPart, mergeClaim, normalizeInboundDomain, splitRecipient } from './inbound-route-rules.js';
import { InboundRouteBook, DomainTaken, type InboundRouteStore } from './inbound-route-book.js';
import type { InboundRoute } from '../contracts/inbound-route.js';

test('normalizeInboundDomain: lower-case IDNA ASCII without the trailing dot; anything else is refused', () => {
  const cases: Array<[string, string]> = [
    ['Inbound.Acme.COM', 'inbound.acme.com'],
    ['inbound.acme.com.', 'inbound.acme.com'],
    [' mail.bücher.example ', 'mail.xn--bcher-kva.example'],
  ];
  for (const [input, want] of cases) assert.equal(normalizeInboundDomain(input), want, input);
  for (const bad of ['', 'localhost', 'a@b.com', 'exa mple.com', '-x.example.com', 'example.123', 'a/b.com', '[127.0.0.1]', `${'a'.repeat(64)}.com`]) {
    assert.equal(typeof normalizeInboundDomain(bad), 'object', bad);
  }
});

const route = (tenant: string, extra: Partial<InboundRoute> = {}): InboundRoute => ({ schemaVersion: 1, domain: 'in.acme.test', tenant, createdAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:00.000Z', ...extra });

test('mergeClaim: the first claim wins over another tenant; the owner rewrites its own route keeping createdAt', () => {
  assert.equal(mergeClaim(undefined, route('acme')).tenant, 'acme');
  assert.equal(mergeClaim(route('acme'), route('acme/eu')).tenant, 'acme', 'acme/eu (a name extending acme) does not take it');
  const rewritten = mergeClaim(route('acme'), route('acme', { localParts: ['support'], createdAt: '2026-02-01T00:00:00.000Z', updatedAt: '2026-02-01T00:00:00.000Z' }));
  assert.deepEqual([rewritten.localParts, rewritten.createdAt, rewritten.updatedAt], [['support'], '2026-01-01T00:00:00.000Z', '2026-02-01T00:00:00.000Z']);
});

test('acceptsLocalPart and splitRecipient', () => {
  assert.equal(acceptsLocalPart({}, 'anyone'), true);
  const only = { localParts: ['support', 'sales'] };
  assert.equal(acceptsLocalPart(only, 'Support'), true);
  assert.equal(acceptsLocalPart(only, 'support+ticket-42'), true);
  assert.equal(acceptsLocalPart(only, 'billing'), false);
  assert.equal(acceptsLocalPart(only, 'supportx'), false);
  assert.deepEqual(splitRecipient('Jane@In.Acme.Test'), { local: 'Jane', domain: 'in.acme.test' });
  assert.equal(splitRecipient('no-domain'), undefined);
  assert.equal(splitRecipient('x@'), undefined);
});

/** A store that behaves like the CompactedTable with mergeClaim; `interleave` runs a write between another's produce and read-back. */
function mapStore(): InboundRouteStore & { log: Array<InboundRoute | null>; interleave?: () => void } {
  const map = new Map<string, InboundRoute>();
  const store = {
    log: [] as Array<InboundRoute | null>,
    interleave: undefined as undefined | (() => void),
    get: (k: string) => map.get(k),
    entries: () => map.entries(),
    catchUp: async () => {},
    async put(k: string, v: InboundRoute | null) {
      const race = store.interleave;
      store.interleave = undefined;
      race?.();
      store.log.push(v);
      if (v === null) map.delete(k);
      else map.set(k, mergeClaim(map.get(k), v));
      return map.get(k);
    },
  };
  return store;
}

test('InboundRouteBook: claims per tenant (acme and acme/eu kept apart), 409 for another tenant, a lost race rewrites the owner last', async () => {
  const store = mapStore();
  const book = new InboundRouteBook(store);
  assert.equal((await book.claim('acme', 'in.acme.test')).created, true);
  assert.equal((await book.claim('acme', 'in.acme.test', ['Support'])).created, false);
  assert.deepEqual(book.get('in.acme.test')?.localParts, ['support']);
  await assert.rejects(book.claim('acme/eu', 'in.acme.test'), DomainTaken);
  assert.equal(await book.release('acme/eu', 'in.acme.test'), false);
  assert.deepEqual(book.list('acme/eu'), []);
  assert.equal(book.match('support+1@IN.acme.test')?.tenant, 'acme');
  assert.equal(book.match('sales@in.acme.test'), undefined);
  assert.equal(await book.release('acme', 'in.acme.test'), true);
  assert.equal(book.match('support@in.acme.test'), undefined);

  // acme/eu's write reaches the log just before acme's: acme reads back acme/eu's route.
  store.interleave = () => void store.put('race.test', route('acme/eu', { domain: 'race.test' }));
  await assert.rejects(book.claim('acme', 'race.test'), DomainTaken);
  assert.equal(book.get('race.test')?.tenant, 'acme/eu');
  assert.equal(store.log.at(-1)?.tenant, 'acme/eu', 'the owner’s record is the last one of the key (what compaction keeps)');
});
