// `postline start` from a checkout runs compiled JavaScript, not tsx: the TypeScript of services/
// and shared/ is transpiled in one esbuild pass (~0.5 s) into node_modules/.cache/postline/<hash>/,
// with the data files beside it (templates, YAML rules, console views), and every process of the
// embedded default runs that tree. tsx in each process cost ~95 MB PSS in total at rest (its
// loader thread, its transforms) and resolved every runtime require() through its hooks.
//
// The directory is named by a hash of every file's path and content, the Node and esbuild versions
// and the options, so an edited source gets a new build on the next start and an unchanged tree
// starts from the one it has. A build is written to a temporary directory and renamed into place:
// two starts at once both build, one rename wins, and no process ever sees half a tree. The
// newest KEEP builds stay (a launcher still running an older one restarts its children from it).
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);

/** The directories compiled, relative to the repository root. */
export const SOURCE_DIRS = ['services', 'shared'];
const KEEP = 3;
/** Builds under way in this process (esbuild's service is stopped after the last). */
let building = 0;

/**
 * esbuild's options for a tree that Node runs as is: ESM for this Node, names kept (error and
 * class names appear in logs), not minified, source maps in files beside the code.
 */
export const TREE_OPTIONS = {
  target: `node${process.versions.node}`,
  format: 'esm',
  platform: 'node',
  sourcemap: 'linked',
  sourcesContent: false,
  keepNames: true,
};

const isTest = (name) => /\.test\.ts$/.test(name);

/** Every file under `dirs` (relative to `root`) as paths relative to root, sorted; node_modules skipped. */
export function listFiles(root, dirs) {
  const out = [];
  const walk = (rel) => {
    for (const entry of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      if (entry.name === 'node_modules') continue;
      const child = path.join(rel, entry.name);
      if (entry.isDirectory()) walk(child);
      else if (entry.isFile()) out.push(child);
    }
  };
  for (const dir of dirs) walk(dir);
  return out.sort();
}

/** Every `.ts` file under `dirs` (absolute paths), declaration files left out. */
export function listTypeScript(root, dirs) {
  return listFiles(root, dirs)
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .map((f) => path.join(root, f));
}

/**
 * The compiled tree of `root` (built when missing); resolves to its directory, which holds
 * `services/cli.js`. `cacheDir` must lie under the repository so that the tree's imports find
 * node_modules by walking up.
 */
export async function compiledTree(root, { cacheDir = path.join(root, 'node_modules', '.cache', 'postline') } = {}) {
  const files = listFiles(root, SOURCE_DIRS).filter((f) => !isTest(f) && !f.endsWith('.d.ts'));
  // esbuild's version from its package.json: its API (~25 ms to load) only when there is something to build.
  const { version } = require('esbuild/package.json');
  const hash = createHash('sha256').update(`${process.version}\0${version}\0${JSON.stringify(TREE_OPTIONS)}\0`);
  for (const rel of files) hash.update(`${rel}\0`).update(fs.readFileSync(path.join(root, rel))).update('\0');
  const dir = path.join(cacheDir, hash.digest('hex').slice(0, 16));
  if (fs.existsSync(path.join(dir, 'services', 'cli.js'))) {
    // Marked as used, so that pruning keeps the builds started most recently.
    const now = new Date();
    fs.utimesSync(dir, now, now);
    return dir;
  }

  const esbuild = await import('esbuild');
  fs.mkdirSync(cacheDir, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(cacheDir, '.build-'));
  building++;
  try {
    await esbuild.build({
      ...TREE_OPTIONS,
      entryPoints: files.filter((f) => f.endsWith('.ts')).map((f) => path.join(root, f)),
      outdir: tmp,
      outbase: root,
      absWorkingDir: root,
      bundle: false,
      logLevel: 'warning',
    });
    for (const rel of files.filter((f) => !f.endsWith('.ts'))) {
      fs.mkdirSync(path.dirname(path.join(tmp, rel)), { recursive: true });
      fs.copyFileSync(path.join(root, rel), path.join(tmp, rel));
    }
    try {
      fs.renameSync(tmp, dir);
    } catch (err) {
      // Another start renamed the same build into place first: use it.
      if (!fs.existsSync(path.join(dir, 'services', 'cli.js'))) throw err;
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
    // esbuild's API keeps its service process for later calls; the launcher makes none.
    if (--building === 0) await esbuild.stop();
  }
  prune(cacheDir, dir);
  return dir;
}

/** Removes all but the newest KEEP builds (never `current`) and temporary directories older than an hour. */
function prune(cacheDir, current) {
  const entries = fs.readdirSync(cacheDir, { withFileTypes: true }).filter((e) => e.isDirectory());
  const aged = entries.map((e) => ({ full: path.join(cacheDir, e.name), temp: e.name.startsWith('.build-'), mtime: fs.statSync(path.join(cacheDir, e.name)).mtimeMs }));
  const builds = aged.filter((e) => !e.temp && e.full !== current).sort((a, b) => b.mtime - a.mtime);
  const stale = [...builds.slice(KEEP - 1), ...aged.filter((e) => e.temp && e.mtime < Date.now() - 3_600_000)];
  for (const e of stale) fs.rmSync(e.full, { recursive: true, force: true });
}
