import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PermanentError, ValidationError } from '../errors.js';
import { TemplateRepository, type TemplateStore } from './template-repository.js';
import { StoredTemplateContract, type StoredTemplate } from './template-schema.js';
import type { DirectoryTemplates } from './template-directory.js';

/**
 * The table's contract in memory: `put` is visible at once and reports the change; `lagging`
 * holds writes back until `catchUp`, like a replica that has not read them yet.
 */
class MemoryStore implements TemplateStore {
  map = new Map<string, StoredTemplate>();
  pending: Array<[string, StoredTemplate | null]> = [];
  lagging = false;
  catchUps = 0;
  onChange?: (key: string) => void;
  get(key: string) {
    return this.map.get(key);
  }
  async put(key: string, value: StoredTemplate | null) {
    // What the table stores went through the contract.
    if (value) StoredTemplateContract.decode(StoredTemplateContract.encode(value));
    this.pending.push([key, value]);
    if (!this.lagging) await this.catchUp();
    return this.map.get(key);
  }
  async catchUp() {
    this.catchUps++;
    for (const [key, value] of this.pending.splice(0)) {
      if (value) this.map.set(key, value);
      else this.map.delete(key);
      this.onChange?.(key);
    }
  }
  entries() {
    return this.map.entries();
  }
}

function directory(templates: Record<string, { subject: string; html?: string; text?: string }>, partials: Record<string, string> = {}, rev = 'p1'): DirectoryTemplates {
  return {
    templates: new Map(
      Object.entries(templates).map(([name, t]) => [name, { template: { schemaVersion: 1, name, ...t, updatedAt: '2026-01-01T00:00:00.000Z', version: 1 }, revision: JSON.stringify(t) }]),
    ),
    partials,
    partialsRevision: rev,
  };
}

function setup(dir?: DirectoryTemplates) {
  const store = new MemoryStore();
  let tick = 0;
  const repo = new TemplateRepository({ store, directory: dir, now: () => new Date(Date.UTC(2026, 0, 1, 0, 0, tick++)) });
  store.onChange = (key) => repo.invalidate(key);
  return { store, repo };
}

describe('TemplateRepository.put', () => {
  test('stores a template with version 1, then 2, visible through get', async () => {
    const { repo } = setup();
    const v1 = await repo.put('acme', 'welcome', { subject: 'Hi {{name}}', html: '<p>{{name}}</p>', partials: { f: 'x' } });
    assert.equal(v1.version, 1);
    assert.equal(v1.name, 'welcome');
    assert.deepEqual(repo.get('acme', 'welcome'), v1);
    const v2 = await repo.put('acme', 'welcome', { subject: 'Hello', text: 'x' });
    assert.equal(v2.version, 2);
    assert.equal(v2.html, undefined, 'a put replaces the whole template');
    assert.equal(repo.get('other', 'welcome'), undefined, 'tenants do not see each other’s templates');
  });

  const invalid: Array<{ name: string; tpl: string; input: unknown; paths: string[] }> = [
    { name: 'html does not compile', tpl: 'x', input: { subject: 's', html: '{{#each items}}' }, paths: ['html'] },
    { name: 'partial does not compile', tpl: 'x', input: { subject: 's', text: 't', partials: { footer: '{{' } }, paths: ['partials.footer'] },
    { name: 'no body', tpl: 'x', input: { subject: 's' }, paths: ['html'] },
    { name: 'no subject', tpl: 'x', input: { html: 'h' }, paths: ['subject'] },
    { name: 'unknown field', tpl: 'x', input: { subject: 's', html: 'h', body: 'b' }, paths: ['body'] },
    { name: 'bad partial name', tpl: 'x', input: { subject: 's', html: 'h', partials: { 'a b': 'x' } }, paths: ['partials.a b'] },
    { name: 'bad template name', tpl: '../etc', input: { subject: 's', html: 'h' }, paths: ['name'] },
  ];
  for (const c of invalid) {
    test(`rejects: ${c.name}`, async () => {
      const { repo, store } = setup();
      await assert.rejects(
        repo.put('acme', c.tpl, c.input as never),
        (err: unknown) => {
          assert.ok(err instanceof ValidationError, String(err));
          assert.deepEqual([...new Set(err.issues.map((i) => i.path))], c.paths);
          return true;
        },
      );
      assert.equal(store.map.size, 0, 'nothing stored');
    });
  }

  test('rejects a template too large for a Kafka record', async () => {
    const { repo } = setup();
    const big = 'x'.repeat(500 * 1024);
    await assert.rejects(repo.put('acme', 'big', { subject: 's', html: big, text: big }), /at most/);
  });

  test('delete and list', async () => {
    const { repo } = setup();
    await repo.put('acme', 'b', { subject: 's', text: 't' });
    await repo.put('acme', 'a', { subject: 's', text: 't' });
    await repo.put('acme/eu', 'c', { subject: 's', text: 't' });
    assert.deepEqual(repo.list('acme').map((t) => t.name), ['a', 'b']);
    assert.equal(await repo.delete('acme', 'a'), true);
    assert.equal(await repo.delete('acme', 'a'), false);
    assert.deepEqual(repo.list('acme').map((t) => t.name), ['b']);
  });
});

describe('TemplateRepository.compiled', () => {
  test('a tenant template overrides the directory one for that tenant only', async () => {
    const { repo } = setup(directory({ welcome: { subject: 'dir {{n}}', text: 't' } }));
    await repo.put('acme', 'welcome', { subject: 'acme {{n}}', text: 't' });
    assert.equal((await repo.compiled('acme', 'welcome')).render({ n: 1 }).subject, 'acme 1');
    assert.equal((await repo.compiled('globex', 'welcome')).render({ n: 1 }).subject, 'dir 1');
  });

  test('tenant templates may use the directory’s shared partials', async () => {
    const { repo } = setup(directory({}, { footer: '<i>{{co}}</i>' }));
    await repo.put('acme', 'w', { subject: 's', html: 'x{{> footer}}' });
    assert.equal((await repo.compiled('acme', 'w')).render({ co: 'A&B' }).html, 'x<i>A&amp;B</i>');
  });

  test('compiles once, recompiles after the template changes', async () => {
    const { repo } = setup();
    await repo.put('acme', 'w', { subject: 'v1', text: 't' });
    const first = await repo.compiled('acme', 'w');
    assert.equal(await repo.compiled('acme', 'w'), first, 'cached');
    assert.equal(repo.compilations, 1);
    await repo.put('acme', 'w', { subject: 'v2', text: 't' });
    assert.equal((await repo.compiled('acme', 'w')).render({}).subject, 'v2');
    assert.equal(repo.compilations, 2);
  });

  test('a stale cache entry is not used even if no change was reported', async () => {
    const { repo, store } = setup();
    await repo.put('acme', 'w', { subject: 'v1', text: 't' });
    await repo.compiled('acme', 'w');
    store.onChange = undefined;
    await repo.put('acme', 'w', { subject: 'v2', text: 't' });
    assert.equal((await repo.compiled('acme', 'w')).render({}).subject, 'v2');
  });

  test('a directory reload: changed template recompiled; shared-partial change recompiles all', async () => {
    const { repo } = setup(directory({ a: { subject: 'a1', text: 't' }, b: { subject: 'b1', text: 't' } }));
    await repo.compiled('x', 'a');
    await repo.compiled('x', 'b');
    repo.setDirectory(directory({ a: { subject: 'a2', text: 't' }, b: { subject: 'b1', text: 't' } }));
    assert.equal((await repo.compiled('x', 'a')).render({}).subject, 'a2');
    await repo.compiled('x', 'b');
    assert.equal(repo.compilations, 3, 'b stayed cached');
    repo.setDirectory(directory({ a: { subject: 'a2', text: 't' }, b: { subject: 'b1', text: 't' } }, { p: 'new' }, 'p2'));
    await repo.compiled('x', 'b');
    assert.equal(repo.compilations, 4);
  });

  test('a miss catches up with the topic before failing (PUT just before the email)', async () => {
    const { repo, store } = setup();
    store.lagging = true;
    void repo.put('acme', 'fresh', { subject: 'fresh', text: 't' });
    assert.equal((await repo.compiled('acme', 'fresh')).render({}).subject, 'fresh');
  });

  test('unknown template → permanent TEMPLATE_NOT_FOUND', async () => {
    const { repo, store } = setup(directory({ a: { subject: 's', text: 't' } }));
    await assert.rejects(repo.compiled('acme', 'nope'), (err: unknown) => err instanceof PermanentError && err.code === 'TEMPLATE_NOT_FOUND' && /nope/.test(err.message));
    assert.equal(store.catchUps, 1, 'caught up once before giving up');
  });

  test('the cache is bounded (least recently used dropped)', async () => {
    const store = new MemoryStore();
    const repo = new TemplateRepository({ store, cacheSize: 2 });
    for (const n of ['a', 'b', 'c']) await repo.put('t', n, { subject: n, text: 't' });
    await repo.compiled('t', 'a');
    await repo.compiled('t', 'b');
    await repo.compiled('t', 'a');
    await repo.compiled('t', 'c'); // evicts b
    await repo.compiled('t', 'a');
    assert.equal(repo.compilations, 3);
    await repo.compiled('t', 'b');
    assert.equal(repo.compilations, 4);
  });
});

describe('TemplateRepository.warm', () => {
  test('compiles the directory’s templates and every tenant’s own (acme, acme/eu) ahead of use', async () => {
    const { repo } = setup(directory({ welcome: { subject: 'dir {{n}}', text: 't' }, receipt: { subject: 'r', html: '<b>{{total}}</b>' } }));
    await repo.put('acme', 'welcome', { subject: 'acme {{n}}', text: 't' });
    await repo.put('acme/eu', 'welcome', { subject: 'acme/eu {{n}}', text: 't' });
    const warmed = await repo.warm(10_000);
    assert.deepEqual({ compiled: warmed.compiled, left: warmed.left }, { compiled: 4, left: 0 });
    assert.equal(repo.compilations, 4);
    // Every message now finds its own template compiled; nothing compiles on use.
    assert.equal((await repo.compiled('acme', 'welcome')).render({ n: 1 }).subject, 'acme 1');
    assert.equal((await repo.compiled('acme/eu', 'welcome')).render({ n: 1 }).subject, 'acme/eu 1');
    assert.equal((await repo.compiled('globex', 'welcome')).render({ n: 1 }).subject, 'dir 1');
    assert.equal((await repo.compiled('acme', 'receipt')).render({ total: '<3' }).html, '<b>&lt;3</b>');
    assert.equal(repo.compilations, 4);
    // Again: all current, nothing to do.
    assert.equal((await repo.warm(10_000)).compiled, 0);
    // A changed template is compiled by the next warm only.
    await repo.put('acme', 'welcome', { subject: 'acme v2 {{n}}', text: 't' });
    assert.equal((await repo.warm(10_000)).compiled, 1);
    assert.equal((await repo.compiled('acme', 'welcome')).render({ n: 2 }).subject, 'acme v2 2');
    assert.equal(repo.compilations, 5);
  });

  test('skips a template that does not compile; stops at its budget and at the cache size', async () => {
    const { store, repo } = setup(directory({ a: { subject: 'a', text: 'a' } }));
    // Not through put (which refuses it): a record as a foreign producer might write it.
    store.map.set('acme\u0000broken', { schemaVersion: 1, name: 'broken', subject: '{{#if}', text: 't', updatedAt: '2026-02-01T00:00:00.000Z', version: 1 });
    await repo.put('acme', 'b', { subject: 'b', text: 'b' });
    assert.deepEqual({ ...(await repo.warm(10_000)), ms: 0 }, { compiled: 2, left: 0, ms: 0 });
    await assert.rejects(repo.compiled('acme', 'broken'), (err: unknown) => err instanceof PermanentError && err.code === 'TEMPLATE_INVALID');

    const none = setup(directory({ a: { subject: 'a', text: 'a' }, b: { subject: 'b', text: 'b' } }));
    assert.deepEqual({ ...(await none.repo.warm(0)), ms: 0 }, { compiled: 0, left: 2, ms: 0 });

    const store2 = new MemoryStore();
    const small = new TemplateRepository({ store: store2, cacheSize: 2, directory: directory({ a: { subject: 'a', text: 'a' }, b: { subject: 'b', text: 'b' }, c: { subject: 'c', text: 'c' } }) });
    assert.deepEqual({ ...(await small.warm(10_000)), ms: 0 }, { compiled: 2, left: 1, ms: 0 });
  });
});

describe('TemplateRepository: nested tenant names (acme, acme/eu)', () => {
  const t = { subject: 'Hi', text: 'EU only {{x}}' };

  test('acme never reaches acme/eu’s template, by get, find, compiled, list or delete', async () => {
    const { store, repo } = setup();
    await repo.put('acme/eu', 'welcome', t);
    assert.equal(repo.get('acme', 'eu/welcome'), undefined);
    assert.equal(repo.find('acme', 'eu/welcome'), undefined);
    await assert.rejects(repo.compiled('acme', 'eu/welcome'), (err: unknown) => err instanceof PermanentError);
    assert.deepEqual(repo.list('acme'), []);
    assert.equal(await repo.delete('acme', 'eu/welcome'), false);
    assert.equal(repo.get('acme/eu', 'welcome')?.text, t.text);
    assert.equal((await repo.compiled('acme/eu', 'welcome')).render({ x: 1 }).text, 'EU only 1');
    // No two (tenant, name) pairs share a key.
    assert.equal(store.map.size, 1);
    await repo.put('acme', 'welcome', { subject: 'Hi', text: 'acme' });
    assert.equal(store.map.size, 2);
    assert.equal(repo.get('acme/eu', 'welcome')?.text, t.text);
    assert.deepEqual(repo.list('acme/eu').map((x) => x.text), [t.text]);
  });

  test('invalid names are refused on every path', async () => {
    const { repo } = setup(directory({ welcome: { subject: 'dir', text: 'dir' } }));
    for (const name of ['eu/welcome', '../welcome', 'a'.repeat(129), '', 'we lcome']) {
      assert.equal(repo.get('acme', name), undefined, name);
      assert.equal(repo.find('acme', name), undefined, name);
      await assert.rejects(repo.compiled('acme', name), (err: unknown) => err instanceof ValidationError, name);
      await assert.rejects(repo.put('acme', name, t), (err: unknown) => err instanceof ValidationError, name);
    }
  });

  test('a record stored under the legacy key <tenant>/<name> keeps working and moves on the next PUT', async () => {
    const { store, repo } = setup();
    const legacy: StoredTemplate = { schemaVersion: 1, name: 'welcome', subject: 'Old', text: 'old {{x}}', updatedAt: '2025-01-01T00:00:00.000Z', version: 3 };
    store.map.set('acme/eu/welcome', legacy);
    assert.equal(repo.get('acme/eu', 'welcome')?.subject, 'Old');
    assert.equal((await repo.compiled('acme/eu', 'welcome')).render({ x: 2 }).text, 'old 2');
    assert.deepEqual(repo.list('acme/eu').map((x) => x.name), ['welcome']);
    // The legacy key cannot be reached by the shorter tenant either.
    assert.equal(repo.get('acme', 'eu/welcome'), undefined);
    assert.deepEqual(repo.list('acme'), []);

    const next = await repo.put('acme/eu', 'welcome', { subject: 'New', text: 'new {{x}}' });
    assert.equal(next.version, 4);
    assert.deepEqual([...store.map.keys()], ['acme/eu\u0000welcome']);
    assert.equal((await repo.compiled('acme/eu', 'welcome')).render({ x: 3 }).text, 'new 3');

    store.map.set('acme/eu/other', { ...legacy, name: 'other' });
    assert.equal(await repo.delete('acme/eu', 'other'), true);
    assert.equal(store.map.has('acme/eu/other'), false);
  });
});
