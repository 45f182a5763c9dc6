// Transpiles the TypeScript tree (services/, shared/, test/) to JavaScript in one esbuild pass, so
// that each test process loads plain JS instead of starting tsx and transforming its module graph
// again. The options are tsx's own (target this Node, keepNames, whitespace-minified, source maps),
// so the code that runs is the code tsx would run.
import { listTypeScript, TREE_OPTIONS } from '../../services/compiled-tree.mjs';

/** esbuild options shared by the one-pass build and the on-demand fallback (hooks.mjs). */
// npm start's tree (compiled-tree.mjs), with the source maps inline (register.mjs enables them:
// test failures name .ts lines) and whitespace minified, as tsx does.
export const TRANSFORM_OPTIONS = { ...TREE_OPTIONS, sourcemap: 'inline', minifyWhitespace: true };

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
