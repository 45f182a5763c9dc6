/** Paths of the repository, for tests that read its deployment files. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export const repoPath = (...parts: string[]): string => path.join(REPO, ...parts);
