/** Builds the feedback keyring from config: `feedback.keys`, then the keys of `feedback.keysFile`. */
import { readFileSync } from 'node:fs';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { Type } from '@sinclair/typebox';
import { FeedbackKeyEntry } from '../config/feedback.js';
import type { PostlineConfig } from '../config.js';
import { FeedbackKeyring, type FeedbackKey } from './feedback-token.js';
import { ConfigError } from '../config-loader.js';

const KeysFile = TypeCompiler.Compile(Type.Array(FeedbackKeyEntry));

/** Throws naming the file and the bad entry (never the secret) when the file cannot be used. */
export function loadFeedbackKeyring(config: PostlineConfig['feedback'], read: (path: string) => string = (p) => readFileSync(p, 'utf8')): FeedbackKeyring {
  const keys: FeedbackKey[] = [...config.keys];
  if (config.keysFile) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(read(config.keysFile));
    } catch (err) {
      throw new ConfigError([`feedback.keysFile (${config.keysFile}): ${(err as Error).message.split('\n')[0]}`]);
    }
    // Errors name the path, never the value: a secret must not reach a log.
    const errors = [...KeysFile.Errors(parsed)].slice(0, 10);
    if (errors.length) throw new ConfigError(errors.map((e) => `feedback.keysFile (${config.keysFile}) ${e.path || '/'}: ${e.message}`));
    keys.push(...(parsed as FeedbackKey[]));
  }
  return new FeedbackKeyring(keys);
}
