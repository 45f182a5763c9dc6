// `node --import ./test/runner/register.mjs`: runs the repository's TypeScript from the build that
// run.mjs made (its directory in TS_TEST_BUILD_DIR), with source maps so stack traces name the
// `.ts` lines. Without that variable every `.ts` file is transformed on demand.
import { register } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

process.setSourceMapsEnabled(true);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
register('./hooks.mjs', import.meta.url, { data: { root, outDir: process.env.TS_TEST_BUILD_DIR } });
