import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideRestart, type Failure, type RestartDecision, type RestartPolicy } from './restart-policy.js';

const POLICY: RestartPolicy = { initialDelayMs: 500, maxDelayMs: 4000, stableAfterMs: 30_000, maxRapidFailures: 6, readyTimeoutMs: 60_000 };

const cases: Array<[string, Failure, RestartDecision]> = [
  ['killed while starting, first failure', { code: null, signal: 'SIGKILL', previousFailures: 0 }, { action: 'restart', delayMs: 500, failures: 1 }],
  ['killed right after it was ready', { code: null, signal: 'SIGKILL', readyForMs: 200, previousFailures: 1 }, { action: 'restart', delayMs: 1000, failures: 2 }],
  ['exited 0 on its own (a shutdown nobody asked for)', { code: 0, signal: null, readyForMs: 5000, previousFailures: 2 }, { action: 'restart', delayMs: 2000, failures: 3 }],
  ['the backoff is capped', { code: 1, signal: null, previousFailures: 4 }, { action: 'restart', delayMs: 4000, failures: 5 }],
  ['a stable run starts the backoff over', { code: 1, signal: null, readyForMs: 30_000, previousFailures: 5 }, { action: 'restart', delayMs: 500, failures: 1 }],
  [
    'gives up after maxRapidFailures in a row',
    { code: 1, signal: null, readyForMs: 29_999, previousFailures: 5 },
    { action: 'give-up', failures: 6, reason: 'it failed 6 times in a row, none of them staying up for 30 s' },
  ],
  [
    'an invalid configuration is not retried',
    { code: 2, signal: null, previousFailures: 0 },
    { action: 'give-up', failures: 1, reason: 'its configuration is invalid (exit code 2): restarting cannot help' },
  ],
  ['exit code 2 after having been ready is an ordinary failure', { code: 2, signal: null, readyForMs: 100, previousFailures: 0 }, { action: 'restart', delayMs: 500, failures: 1 }],
];

for (const [name, failure, expected] of cases) {
  test(`decideRestart: ${name}`, () => assert.deepEqual(decideRestart(failure, POLICY), expected));
}
