/**
 * Test helpers for the embedded broker: a broker on a free port in a fresh temporary data
 * directory, and unique topic/group names per test.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { startBroker, type Broker, type StartBrokerOptions } from '../../services/broker/broker.js';

export interface TestBroker extends Broker {
  dataDir: string;
  /** Closes the broker and removes its data directory. */
  destroy(): Promise<void>;
}

export function tempDir(prefix = 'postline-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export async function startTestBroker(opts: StartBrokerOptions = {}): Promise<TestBroker> {
  const dataDir = opts.dataDir ?? tempDir('postline-broker-');
  const broker = await startBroker({ logger: pino({ level: process.env.LOG_LEVEL ?? 'silent' }), ...opts, dataDir });
  return {
    ...broker,
    dataDir,
    async destroy() {
      await broker.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A name unique to this test run, e.g. `uniqueName('topic')` → `topic-3f9a1c2b`. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

/** Polls `check` until it returns a truthy value or `timeoutMs` passes (no fixed sleeps in tests). */
export async function waitFor<T>(check: () => T | Promise<T>, timeoutMs = 10_000, what = 'condition'): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
