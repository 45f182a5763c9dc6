// Module hooks for the test run (registered by register.mjs): resolve `./x.js` written in a `.ts`
// file to `./x.ts` (NodeNext style), and load a `.ts` file from the JavaScript that compile.mjs
// wrote before the run. A `.ts` file the build does not hold (written by a test, or outside the
// tree) is transformed on demand with the same options. URLs stay the `.ts` files' own, so
// `import.meta.url` and fixtures next to a test resolve as under tsx.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { TRANSFORM_OPTIONS } from './compile.mjs';

let root = '';
let outDir = '';
let esbuild;

export function initialize(data) {
  root = data.root;
  outDir = data.outDir ?? '';
}

export async function resolve(specifier, context, nextResolve) {
  const parent = context.parentURL;
  if (parent?.startsWith('file:') && parent.endsWith('.ts') && specifier.startsWith('.') && specifier.endsWith('.js')) {
    const ts = new URL(`${specifier.slice(0, -3)}.ts`, parent);
    if (existsSync(fileURLToPath(ts))) return { url: ts.href, format: 'module', shortCircuit: true };
  }
  return nextResolve(specifier, context);
}

export async function load(url, context, nextResolve) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return nextResolve(url, context);
  const file = fileURLToPath(url);
  const rel = path.relative(root, file);
  if (outDir && !rel.startsWith('..')) {
    try {
      return { format: 'module', source: readFileSync(path.join(outDir, `${rel.slice(0, -3)}.js`), 'utf8'), shortCircuit: true };
    } catch (err) {
      if (err.code !== 'ENOENT') throw err;
    }
  }
  esbuild ??= await import('esbuild');
  const { code } = esbuild.transformSync(readFileSync(file, 'utf8'), { ...TRANSFORM_OPTIONS, loader: 'ts', sourcefile: file });
  return { format: 'module', source: code, shortCircuit: true };
}
