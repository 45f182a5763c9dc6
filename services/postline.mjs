#!/usr/bin/env node
// The `postline` command. Runs the compiled output when it exists (the Docker image), and the
// TypeScript sources through tsx otherwise (a checkout), so both paths run the same code.
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url))); // services/ → repo root
const compiled = path.join(root, 'dist', 'services', 'cli.js');
if (existsSync(compiled)) {
  await import(pathToFileURL(compiled).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(pathToFileURL(path.join(root, 'services', 'cli.ts')).href);
}
