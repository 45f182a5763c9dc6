/**
 * `postline config [markdown|env|configmap]`: prints the configuration reference, the defaults as
 * an env file, or a Kubernetes ConfigMap — all generated from the one config schema.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { configMapYaml, configReferenceMarkdown, defaultEnv, withConfigReference } from '../shared/config-docs.js';

export async function main(argv: string[]): Promise<void> {
  const format = argv[0] ?? 'markdown';
  if (format === 'markdown') process.stdout.write(`${configReferenceMarkdown()}\n`);
  else if (format === 'env') process.stdout.write(Object.entries(defaultEnv()).map(([k, v]) => `${k}=${v}`).join('\n') + '\n');
  else if (format === 'configmap') process.stdout.write(configMapYaml());
  else if (format === 'readme') {
    const readme = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'README.md');
    fs.writeFileSync(readme, withConfigReference(fs.readFileSync(readme, 'utf8')));
  }
  else {
    process.stderr.write(`usage: postline config [markdown|env|configmap|readme]\n`);
    process.exit(2);
  }
}
