#!/usr/bin/env node
// The `postline` command. Runs the compiled output when it exists (the Docker image), and the
// TypeScript sources through tsx otherwise (a checkout), so both paths run the same code —
// except `postline start`, which runs a tree compiled from the sources into node_modules/.cache
// (compiled-tree.mjs): every process of the embedded default then runs plain JavaScript.
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url))); // services/ → repo root
const compiled = path.join(root, 'dist', 'services', 'cli.js');

/** The tree npm start runs, or undefined (then the sources run through tsx) when it cannot be built. */
async function startTree() {
  try {
    const { compiledTree } = await import('./compiled-tree.mjs');
    return await compiledTree(root);
  } catch (err) {
    process.stderr.write(`could not compile the sources into node_modules/.cache/postline (${err.message.split('\n')[0]}); running them through tsx\n`);
    return undefined;
  }
}

const tree = existsSync(compiled) ? path.join(root, 'dist') : process.argv[2] === 'start' ? await startTree() : undefined;
if (tree) {
  await import(pathToFileURL(path.join(tree, 'services', 'cli.js')).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(pathToFileURL(path.join(root, 'services', 'cli.ts')).href);
}
