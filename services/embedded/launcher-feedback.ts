/**
 * The feedback signing keys `postline start` gives every stage: the user's own when configured
 * (POSTLINE_FEEDBACK_KEYS, feedback.keysFile, or POSTLINE_CONFIG), else one key generated once
 * and kept in the data dir (like the demo API key), so return paths and unsubscribe links signed
 * before a restart still verify after it. The secret is never printed.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { PostlineConfig } from '../../shared/config.js';
import type { FeedbackKey } from '../../shared/feedback/feedback-token.js';

export const FEEDBACK_KEY_FILE = 'feedback-keys.json';

/** The data dir's key, created on first use (mode 0600). */
export function dataDirFeedbackKeys(dataDir: string): FeedbackKey[] {
  const file = path.join(dataDir, FEEDBACK_KEY_FILE);
  if (fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, 'utf8')) as FeedbackKey[];
  const keys: FeedbackKey[] = [{ id: 1, secret: randomBytes(32).toString('base64url') }];
  fs.writeFileSync(file, `${JSON.stringify(keys)}\n`, { mode: 0o600 });
  return keys;
}

/** Environment for the stages: nothing when the user has keys (theirs pass through), else the data dir's key. */
export function launcherFeedbackKeys(config: PostlineConfig['feedback'], dataDir: string): NodeJS.ProcessEnv {
  if (config.keys.length > 0 || config.keysFile) return { POSTLINE_FEEDBACK_KEYS: JSON.stringify(config.keys) };
  return { POSTLINE_FEEDBACK_KEYS: JSON.stringify(dataDirFeedbackKeys(dataDir)) };
}

/**
 * The return-path domain and unsubscribe URL base `postline start` gives the stages: the user's,
 * else local defaults (`bounces.localhost`, the API's address) only while mail goes to the
 * capture server. Through a real relay a return path at bounces.localhost would be refused or
 * rewritten and a 127.0.0.1 link would reach real inboxes, so there only configured values count.
 */
export function launcherFeedbackAddresses(config: PostlineConfig['feedback'], capturing: boolean, apiPort: string): { returnPathDomain: string; unsubscribeUrl: string } {
  return {
    returnPathDomain: config.returnPathDomain || (capturing ? 'bounces.localhost' : ''),
    unsubscribeUrl: config.unsubscribeUrl || (capturing ? `http://127.0.0.1:${apiPort}` : ''),
  };
}
