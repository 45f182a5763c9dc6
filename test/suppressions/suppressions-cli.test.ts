/** `postline suppressions` against a listening send API on the embedded broker. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IngestHarness, KEYS } from '../ingest/ingest-harness.js';
import { runSuppressions } from '../../services/suppressions/command.js';

let h: IngestHarness;
let dir: string;
before(async () => {
  h = await IngestHarness.start();
  dir = await mkdtemp(join(tmpdir(), 'suppressions-cli-'));
});
after(async () => {
  await h.stop();
  await rm(dir, { recursive: true, force: true });
});

async function run(url: string, key: string, ...argv: string[]): Promise<{ code: number; lines: string[] }> {
  const lines: string[] = [];
  const code = await runSuppressions(argv, { env: { POSTLINE_API_URL: url, POSTLINE_API_KEY: key }, fetch, out: (l) => lines.push(l) });
  return { code, lines };
}

test('add, import, list, remove over the API, as the key\'s tenant', async () => {
  const ingest = await h.ingest({}, { listen: true });
  const url = ingest.address!;
  assert.match((await run(url, KEYS.acme, 'add', 'Ann@Example.org', '--note', 'by hand')).lines[0], /suppressed ann@example\.org \(manual\)/);
  const file = join(dir, 'list.csv');
  await writeFile(file, 'address,list,reason,note\nbob@example.org,news,unsubscribe,"from the old ESP, 2024"\ncat@example.org,,complaint,\nann@example.org\n');
  const imported = await run(url, KEYS.acme, 'import', file);
  assert.match(imported.lines[0], /imported 3 lines: 2 added, 1 already suppressed/);
  const listed = await run(url, KEYS.acme, 'list', '--json');
  const entries = listed.lines.map((l) => JSON.parse(l) as { address: string; list?: string; reason: string; note?: string });
  assert.deepEqual(entries.map((e) => [e.address, e.list ?? '', e.reason]), [['ann@example.org', '', 'manual'], ['bob@example.org', 'news', 'unsubscribe'], ['cat@example.org', '', 'complaint']]);
  assert.equal(entries[1].note, 'from the old ESP, 2024');
  // Another tenant's key sees nothing of it.
  assert.deepEqual((await run(url, KEYS['acme/eu'], 'list')).lines, []);
  await run(url, KEYS.acme, 'remove', 'bob@example.org', '--list', 'news');
  assert.equal((await run(url, KEYS.acme, 'list')).lines.length, 2);
  await assert.rejects(run(url, KEYS.acme, 'add', 'nonsense'), /400 VALIDATION_FAILED .*address/);
  await assert.rejects(run(url, KEYS.acme, 'remove', 'nobody@example.org'), /404/);
});
