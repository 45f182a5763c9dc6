/**
 * The tree `postline start` runs (compiled-tree.mjs): built from a checkout's sources with its
 * data files beside the code, runnable by plain Node (imports of `./x.js` written in `.ts` files,
 * packages found by walking up to node_modules), reused while nothing changed, rebuilt when a
 * file changes, one complete tree when two starts build at once, and old builds pruned.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { compiledTree } from './compiled-tree.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** A repository-like root: services/ and shared/ sources, a data file, a test, and node_modules reaching this repo's packages. */
function checkout(): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'postline-tree-'));
  const write = (rel: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), text);
  };
  write('shared/greeting.ts', "import { parse } from 'yaml';\nexport const greeting = (name: string): string => `${parse('word: hello').word} ${name}`;\n");
  write('shared/words.yaml', 'word: hi\n');
  write(
    'services/cli.ts',
    [
      "import fs from 'node:fs';",
      "import { greeting } from '../shared/greeting.js';",
      'interface Out { text: string; data: string; url: string }',
      "const out: Out = { text: greeting(process.argv[2] ?? 'world'), data: fs.readFileSync(new URL('../shared/words.yaml', import.meta.url), 'utf8'), url: import.meta.url };",
      'process.stdout.write(JSON.stringify(out));',
      '',
    ].join('\n'),
  );
  write('services/cli.test.ts', 'throw new Error("tests are not part of the tree");\n');
  fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(root, 'node_modules'));
  return root;
}

function runTree(dir: string, arg: string): { text: string; data: string; url: string } {
  return JSON.parse(execFileSync(process.execPath, [path.join(dir, 'services', 'cli.js'), arg], { encoding: 'utf8' }));
}

/** This process's children running esbuild (its API's service process). */
function esbuildChildren(): number {
  const out = execFileSync('ps', ['--ppid', String(process.pid), '-o', 'comm='], { encoding: 'utf8' });
  return out.split('\n').filter((c) => c.trim() === 'esbuild').length;
}

test('the compiled tree runs under plain Node, with its data files, without tests; esbuild does not stay behind', async (t) => {
  const root = checkout();
  const cacheDir = fs.mkdtempSync(path.join(root, 'cache-'));
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  const before = esbuildChildren();
  const dir = await compiledTree(root, { cacheDir });
  await new Promise((r) => setTimeout(r, 300));
  assert.ok(esbuildChildren() <= before, 'the launcher keeps no esbuild service process for its lifetime');
  assert.equal(path.dirname(dir), cacheDir);
  const out = runTree(dir, 'Ada');
  assert.equal(out.text, 'hello Ada', 'the .ts import and the package (yaml) resolve');
  assert.equal(out.data, 'word: hi\n', 'the data file sits next to the code');
  assert.ok(out.url.startsWith(`file://${dir}/services/cli.js`), out.url);
  assert.ok(!fs.existsSync(path.join(dir, 'services', 'cli.test.js')), 'tests are not compiled');
  assert.ok(fs.existsSync(path.join(dir, 'services', 'cli.js.map')), 'source maps are written beside the code');
});

test('an unchanged tree is reused; a change builds a new one; old builds are pruned', async (t) => {
  const root = checkout();
  const cacheDir = path.join(root, 'cache');
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  const first = await compiledTree(root, { cacheDir });
  const marker = path.join(first, 'marker');
  fs.writeFileSync(marker, '');
  assert.equal(await compiledTree(root, { cacheDir }), first, 'same sources, same tree');
  assert.ok(fs.existsSync(marker), 'reused, not rebuilt');

  const builds: string[] = [first];
  for (let i = 0; i < 3; i++) {
    fs.writeFileSync(path.join(root, 'shared', 'greeting.ts'), `export const greeting = (name: string): string => 'version ${i} ' + name;\n`);
    const dir = await compiledTree(root, { cacheDir });
    assert.ok(!builds.includes(dir), 'an edited source gets a new build');
    assert.equal(runTree(dir, 'x').text, `version ${i} x`);
    builds.push(dir);
    // Distinct mtimes, so that "newest" is well defined on coarse file systems.
    const at = new Date(Date.now() + (i + 1) * 1000);
    fs.utimesSync(dir, at, at);
  }
  const left = fs.readdirSync(cacheDir).map((name) => path.join(cacheDir, name)).sort();
  assert.deepEqual(left, builds.slice(-3).sort(), 'the newest three builds stay');
});

test('two starts building at once both get one complete tree', async (t) => {
  const root = checkout();
  const cacheDir = path.join(root, 'cache');
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  const [a, b] = await Promise.all([compiledTree(root, { cacheDir }), compiledTree(root, { cacheDir })]);
  assert.equal(a, b);
  assert.equal(runTree(a, 'both').text, 'hello both');
  assert.deepEqual(fs.readdirSync(cacheDir), [path.basename(a)], 'no temporary directory left');
});
