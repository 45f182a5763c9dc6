/**
 * Rewrites every generated deployment file (see support/generated-files.ts):
 *   node --import tsx test/deploy/regenerate.ts
 */
import fs from 'node:fs';
import path from 'node:path';
import { GENERATED } from './support/generated-files.js';
import { REPO } from './support/repo.js';

for (const [file, gen] of Object.entries(GENERATED)) {
  const target = path.join(REPO, file);
  const next = gen.content();
  const prev = fs.existsSync(target) ? fs.readFileSync(target, 'utf8') : undefined;
  if (prev === next) continue;
  fs.writeFileSync(target, next);
  process.stdout.write(`wrote ${file}\n`);
}
