/**
 * The test runner (`npm test` → test/runner/run.mjs): TypeScript transpiled once before the run
 * and loaded through register.mjs must behave for a test as it did under tsx — a module's
 * `import.meta.url` is its `.ts` file, `./x.js` specifiers reach `./x.ts`, stack traces name
 * `.ts` lines — whether the file comes from the build or is transformed on demand; and every
 * group of test files runs, a failing one failing the whole run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { compileTree } from './compile.mjs';

const run = promisify(execFile);
const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const REGISTER = path.join(HERE, 'register.mjs');
const ENTRY = path.join(HERE, 'fixtures', 'entry.ts');

interface Report { url: string; greeting: string; stack: string }

async function runEntry(buildDir: string | undefined): Promise<Report> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.TS_TEST_BUILD_DIR;
  if (buildDir) env.TS_TEST_BUILD_DIR = buildDir;
  const { stdout } = await run(process.execPath, ['--import', REGISTER, ENTRY], { cwd: ROOT, env });
  return JSON.parse(stdout) as Report;
}

function assertLikeTsx(report: Report): void {
  assert.equal(report.url, pathToFileURL(ENTRY).href, 'import.meta.url is the .ts file');
  assert.equal(report.greeting, 'hello from greeting.ts', "'./greeting.js' resolved to greeting.ts");
  assert.match(report.stack, /entry\.ts:6:\d+/, `stack names the TypeScript line:\n${report.stack}`);
}

test('a file from the one-pass build runs as under tsx, and the build is what runs', async (t) => {
  const buildDir = await mkdtemp(path.join(os.tmpdir(), 'runner-test-'));
  t.after(() => rm(buildDir, { recursive: true, force: true }));
  assert.ok((await compileTree(ROOT, ['test/runner/fixtures'], buildDir)) >= 2);
  assertLikeTsx(await runEntry(buildDir));

  // The loader reads the build, not the source: a changed build output is what runs.
  const built = path.join(buildDir, 'test', 'runner', 'fixtures', 'greeting.js');
  await writeFile(built, "export const greeting = 'from the build';\n");
  assert.equal((await runEntry(buildDir)).greeting, 'from the build');
});

test('a .ts file missing from the build (or without one) is transformed on demand', async (t) => {
  const emptyBuild = await mkdtemp(path.join(os.tmpdir(), 'runner-test-'));
  t.after(() => rm(emptyBuild, { recursive: true, force: true }));
  assertLikeTsx(await runEntry(emptyBuild));
  assertLikeTsx(await runEntry(undefined));
});

test('run.mjs runs every group of test files and fails when one fails', async () => {
  const fixture = (name: string): string => path.join('test', 'runner', 'fixtures', name);
  const groups = ['--test-reporter=tap', fixture('failing.fixture.ts'), '--', '--test-reporter=tap', fixture('passing.fixture.ts')];
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.NODE_TEST_CONTEXT; // run as a top-level test run, not as a child of this one
  const failed = await run(process.execPath, [path.join(HERE, 'run.mjs'), ...groups], { cwd: ROOT, env }).then(
    () => assert.fail('run.mjs exited 0 although a group failed'),
    (err: { code: number; stdout: string }) => err,
  );
  assert.equal(failed.code, 1);
  assert.match(failed.stdout, /not ok \d+ - fixture group fails/);
  assert.match(failed.stdout, /^ok \d+ - fixture group passes/m, 'the group after the failing one still ran');
});
