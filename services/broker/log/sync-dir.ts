import fs from 'node:fs';

/**
 * Makes new files, renames and deletions in `dir` durable. fsync of a file does not persist its
 * directory entry, so without this a power cut can lose a file whose data was fsynced.
 */
export function syncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
