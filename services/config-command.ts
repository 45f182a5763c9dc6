/**
 * `postline config [markdown|env|configmap]`: prints the configuration reference, the defaults as
 * an env file, or a Kubernetes ConfigMap — all generated from the one config schema.
 */
import { configMapYaml, configReferenceMarkdown, defaultEnv } from '../shared/config-docs.js';

export async function main(argv: string[]): Promise<void> {
  const format = argv[0] ?? 'markdown';
  if (format === 'markdown') process.stdout.write(`${configReferenceMarkdown()}\n`);
  else if (format === 'env') process.stdout.write(Object.entries(defaultEnv()).map(([k, v]) => `${k}=${v}`).join('\n') + '\n');
  else if (format === 'configmap') process.stdout.write(configMapYaml());
  else {
    process.stderr.write(`usage: postline config [markdown|env|configmap]\n`);
    process.exit(2);
  }
}
