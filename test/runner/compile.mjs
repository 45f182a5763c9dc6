// Transpiles the TypeScript tree (services/, shared/, test/) to JavaScript in one esbuild pass, so
// that each test process loads plain JS instead of starting tsx and transforming its module graph
// again. The options are tsx's own (target this Node, keepNames, whitespace-minified, source maps),
// so the code that runs is the code tsx would run.
import { readdirSync } from 'node:fs';
import path from 'node:path';

/** esbuild options shared by the one-pass build and the on-demand fallback (hooks.mjs). */
export const TRANSFORM_OPTIONS = {
  target: `node${process.versions.node}`,
  format: 'esm',
  platform: 'node',
  sourcemap: 'inline',
  sourcesContent: false,
  minifyWhitespace: true,
  keepNames: true,
};

/** Every `.ts` file under `dirs` (relative to `root`), skipping node_modules. */
export function listTypeScript(root, dirs) {
  const out = [];
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.name === 'node_modules') continue;
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push(full);
    }
  };
  for (const dir of dirs) walk(path.join(root, dir));
  return out;
}

/** Writes `<outDir>/<path relative to root>.js` for every `.ts` file under `dirs`. */
export async function compileTree(root, dirs, outDir) {
  const { build } = await import('esbuild');
  const entryPoints = listTypeScript(root, dirs);
  await build({
    ...TRANSFORM_OPTIONS,
    entryPoints,
    outdir: outDir,
    outbase: root,
    absWorkingDir: root,
    bundle: false,
    logLevel: 'warning',
  });
  return entryPoints.length;
}
