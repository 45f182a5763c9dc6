import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BreakerOpenError, BreakerRegistry, HostBreaker, type BreakerState } from './host-breaker.js';

/** Polls until `check` holds (the breaker's pause is a real timer). */
async function waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const refused = (): Promise<void> => Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ESOCKET' }));
const ok = (): Promise<void> => Promise.resolve();

async function failTimes(b: HostBreaker, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await assert.rejects(b.run(refused), /ECONNREFUSED/);
}

function recorder(b: HostBreaker): Array<[BreakerState, BreakerState]> {
  const seen: Array<[BreakerState, BreakerState]> = [];
  b.on('transition', (from: BreakerState, to: BreakerState) => seen.push([from, to]));
  return seen;
}

test('opens at the threshold of failures within the window, and not before', async (t) => {
  const b = new HostBreaker('relay:25', { failureThreshold: 5, windowMs: 10_000, halfOpenAfterMs: 60_000 });
  t.after(() => b.shutdown());
  const seen = recorder(b);
  await failTimes(b, 4);
  assert.equal(b.state, 'closed');
  assert.equal(b.allowsConnect, true);
  await b.run(ok); // successes in between do not reset the count: five failures in the window are five
  await failTimes(b, 1);
  assert.equal(b.state, 'open');
  assert.equal(b.allowsConnect, false);
  assert.deepEqual(seen, [['closed', 'open']]);
});

test('failures spread wider than the window never open it', async (t) => {
  let now = 0;
  const b = new HostBreaker('relay:25', { failureThreshold: 3, windowMs: 1000, halfOpenAfterMs: 60_000 }, () => now);
  t.after(() => b.shutdown());
  for (let i = 0; i < 10; i++) {
    await failTimes(b, 1);
    now += 600; // at most two failures in any 1000 ms
  }
  assert.equal(b.state, 'closed');
  assert.equal(b.recentFailures, 1);
});

test('while open, a connection is not even attempted', async (t) => {
  const b = new HostBreaker('relay:25', { failureThreshold: 1, windowMs: 10_000, halfOpenAfterMs: 60_000 });
  t.after(() => b.shutdown());
  await failTimes(b, 1);
  let called = 0;
  await assert.rejects(
    b.run(async () => {
      called++;
    }),
    (err: unknown) => err instanceof BreakerOpenError && err.code === 'BREAKER_OPEN' && err.retriable,
  );
  assert.equal(called, 0);
});

test('half-open after the pause lets exactly one probe through; success closes it', async (t) => {
  const b = new HostBreaker('relay:25', { failureThreshold: 2, windowMs: 10_000, halfOpenAfterMs: 50 });
  t.after(() => b.shutdown());
  const seen = recorder(b);
  await failTimes(b, 2);
  await waitFor(() => b.state === 'half-open', 2000, 'half-open');
  assert.equal(b.allowsConnect, true);
  let release!: () => void;
  const probe = b.run(() => new Promise<void>((r) => (release = r)));
  assert.equal(b.allowsConnect, false, 'the probe is under way');
  await assert.rejects(b.run(ok), BreakerOpenError, 'a second connection while probing is refused');
  release();
  await probe;
  assert.equal(b.state, 'closed');
  assert.equal(b.recentFailures, 0, 'the count starts again after closing');
  await failTimes(b, 1);
  assert.equal(b.state, 'closed', 'one failure after closing does not reopen it');
  assert.deepEqual(seen, [
    ['closed', 'open'],
    ['open', 'half-open'],
    ['half-open', 'closed'],
  ]);
});

test('a failed probe opens it again for another pause', async (t) => {
  const b = new HostBreaker('relay:25', { failureThreshold: 1, windowMs: 10_000, halfOpenAfterMs: 50 });
  t.after(() => b.shutdown());
  const seen = recorder(b);
  await failTimes(b, 1);
  await waitFor(() => b.state === 'half-open', 2000, 'half-open');
  await failTimes(b, 1);
  assert.equal(b.state, 'open');
  await waitFor(() => b.state === 'half-open', 2000, 'half-open again');
  await b.run(ok);
  assert.deepEqual(
    seen.map(([, to]) => to),
    ['open', 'half-open', 'open', 'half-open', 'closed'],
  );
});

test('the registry keeps one breaker per host and reports transitions with the host', async (t) => {
  const reg = new BreakerRegistry({ failureThreshold: 1, windowMs: 10_000, halfOpenAfterMs: 60_000 });
  t.after(() => reg.shutdown());
  const seen: string[] = [];
  reg.on('transition', (host: string, _from: BreakerState, to: BreakerState) => seen.push(`${host} ${to}`));
  assert.equal(reg.get('a:25'), reg.get('a:25'));
  await assert.rejects(reg.get('a:25').run(refused));
  await reg.get('b:25').run(ok);
  assert.deepEqual(seen, ['a:25 open']);
  assert.deepEqual(reg.states(), [
    { host: 'a:25', state: 'open' },
    { host: 'b:25', state: 'closed' },
  ]);
});
