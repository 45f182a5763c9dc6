// `npm test`: transpiles the TypeScript tree once (compile.mjs), then runs `node --test` once per
// group of arguments (groups separated by `--`, run one after the other; every group runs even if
// an earlier one failed, and the exit code is the first failure's). Each test file's process
// loads that JavaScript through register.mjs instead of starting tsx. The build lives in a fresh
// temporary directory, removed afterwards.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileTree } from './compile.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');

/** Splits `a b -- c d` into [[a, b], [c, d]], dropping empty groups. */
export function argumentGroups(argv) {
  const groups = [[]];
  for (const arg of argv) {
    if (arg === '--') groups.push([]);
    else groups.at(-1).push(arg);
  }
  return groups.filter((g) => g.length > 0);
}

function runGroup(args, outDir) {
  const child = spawn(process.execPath, ['--import', path.join(here, 'register.mjs'), '--test', ...args], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, TS_TEST_BUILD_DIR: outDir },
  });
  const forward = (signal) => child.kill(signal);
  process.on('SIGINT', forward).on('SIGTERM', forward);
  return new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      process.off('SIGINT', forward).off('SIGTERM', forward);
      resolve(signal ? 128 + (os.constants.signals[signal] ?? 0) : (code ?? 1));
    });
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const outDir = mkdtempSync(path.join(os.tmpdir(), 'postline-test-js-'));
  let status = 0;
  try {
    const started = Date.now();
    const files = await compileTree(root, ['services', 'shared', 'test'], outDir);
    process.stdout.write(`# transpiled ${files} TypeScript files in ${Date.now() - started} ms\n`);
    for (const group of argumentGroups(process.argv.slice(2))) {
      const code = await runGroup(group, outDir);
      if (status === 0) status = code;
      if (code > 128) break; // interrupted: do not start the next group
    }
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
  process.exit(status);
}
