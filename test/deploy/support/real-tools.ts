/**
 * The real deployment tools, run offline: `kubectl kustomize` (kustomize as `kubectl apply -k`
 * runs it), `kubectl create ... --dry-run=client` (no cluster) and `docker-compose config` (no
 * Docker engine). A missing tool fails the test that needs it, naming the package to install.
 */
import { execFileSync } from 'node:child_process';
import { parse, parseAllDocuments } from 'yaml';
import type { Resource } from './kustomize.js';
import { REPO } from './repo.js';

function run(tool: string, args: string[], install: string): string {
  try {
    return execFileSync(tool, args, { cwd: REPO, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw new Error(`${tool} is not installed (${install})`);
    throw new Error(`${tool} ${args.join(' ')} failed: ${e.stderr || e.message}`);
  }
}

const KUBECTL = 'kubectl (with kustomize v5: the Google Cloud SDK or Kubernetes apt package, or the release binary)';

/** `kubectl kustomize <dir>`: the resources `kubectl apply -k <dir>` would apply. */
export function kubectlKustomize(dir: string): Resource[] {
  return parseAllDocuments(run('kubectl', ['kustomize', dir], KUBECTL))
    .map((d) => d.toJS() as Resource | null)
    .filter((r): r is Resource => r !== null);
}

/** `kubectl create secret generic <name> --from-file=<path>... --dry-run=client -o yaml`: the Secret it would create. */
export function kubectlSecretFromFiles(name: string, fromFiles: string[]): Resource & { data: Record<string, string> } {
  return parse(run('kubectl', ['create', 'secret', 'generic', name, ...fromFiles.map((f) => `--from-file=${f}`), '--dry-run=client', '-o', 'yaml'], KUBECTL));
}

/** `docker-compose -f a -f b ... config`: the merged, interpolated Compose file (throws when invalid). */
export function composeConfig(files: string[], quiet = false): string {
  return run('docker-compose', [...files.flatMap((f) => ['-f', f]), 'config', ...(quiet ? ['-q'] : [])], 'Debian package docker-compose');
}
