/**
 * One measurement each of the send-path benchmark, on a running Rig:
 *
 * - render stage alone: n requests pre-loaded on email.requested, the renderer started, time
 *   until all n dispatch records exist (polling the dispatch topic's high watermarks);
 * - dispatch stage alone: the dispatch records already on email.dispatch.transactional, the
 *   dispatcher started, time until the sink has answered 250 to all n;
 * - end to end: accepted → 250, fed through ingest's batch endpoint, or produced straight to
 *   email.requested, while every stage runs.
 *
 * A stage's rate counts from its "service ready" line (consumer joined, relay connections
 * warming) to the last record; the rate from its first to its last output is kept as well.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { EmailReadyForDispatchContract, EMAIL_READY_VERSION } from '../../shared/contracts/email-ready-for-dispatch.js';
import { Topics } from '../../shared/topics.js';
import { epochMs } from './send-path-processes.js';
import { API_KEY, type Rig } from './send-path-rig.js';
import type { SinkProcess } from './send-path-sink.js';
import { FROM, ingestBody, RECIPIENT_DOMAINS, recipient, TENANT } from './send-path-workload.js';

export interface StageRun {
  /** Messages per second from ready (or the first request) to the last output. */
  rate: number;
  /** Messages per second from the first output to the last. */
  steadyRate: number;
  /** Ready (or first request) → first output, ms. */
  firstOutputMs: number;
  seconds: number;
  /** Spawn → "service ready" of the stage, ms (stage rows only). */
  startupMs?: number;
}

const DISPATCH_TOPIC = Topics.dispatch('transactional');

function stageRun(n: number, startAt: number, firstAt: number, lastAt: number): StageRun {
  return { rate: n / ((lastAt - startAt) / 1000), steadyRate: (n - 1) / ((lastAt - firstAt) / 1000), firstOutputMs: firstAt - startAt, seconds: (lastAt - startAt) / 1000 };
}

/** Pre-loads n requests, starts the renderer, waits for n dispatch records, stops it. */
export async function renderStage(rig: Rig, tag: string, n: number, timeoutMs: number, signal: AbortSignal, onReady: () => void = () => undefined): Promise<StageRun> {
  const before = await rig.recordCount(DISPATCH_TOPIC);
  await rig.preloadRequested(tag, n);
  const renderer = await rig.startStage('renderer');
  onReady();
  try {
    let firstAt: number | undefined;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const have = (await rig.recordCount(DISPATCH_TOPIC)) - before;
      const now = epochMs();
      if (have > 0) firstAt ??= now;
      if (have >= n) return { ...stageRun(n, renderer.readyAt, firstAt ?? now, now), startupMs: renderer.readyAt - renderer.spawnedAt };
      if (Date.now() > deadline || signal.aborted) throw new Error(`render stage: ${have} of ${n} dispatch records after ${timeoutMs} ms${signal.aborted ? ' (suite time limit)' : ''}`);
      await sleep(20);
    }
  } finally {
    await rig.stopStage('renderer');
  }
}

/** Starts the dispatcher (with `env`), waits until the sink has n more messages, stops it. */
export async function dispatchStage(rig: Rig, sink: SinkProcess, n: number, env: Record<string, string>, timeoutMs: number, signal: AbortSignal, onReady: () => void = () => undefined): Promise<StageRun> {
  const { done } = await sink.expect(n, timeoutMs, signal);
  const dispatcher = await rig.startStage('dispatcher', env);
  onReady();
  try {
    const w = await done;
    return { ...stageRun(n, dispatcher.readyAt, w.firstAt, w.lastAt), startupMs: dispatcher.readyAt - dispatcher.spawnedAt };
  } finally {
    await rig.stopStage('dispatcher');
  }
}

/** n dispatch records produced straight to `topic` (email.dispatch.transactional), the MIME cycled from `raws`. */
export async function preloadDispatch(rig: Rig, tag: string, n: number, raws: string[], topic: string = DISPATCH_TOPIC): Promise<void> {
  const acceptedAt = new Date().toISOString();
  await rig.produce(
    topic,
    Array.from({ length: n }, (_, i) => {
      const domain = `d${i % RECIPIENT_DOMAINS}.example`;
      const value = EmailReadyForDispatchContract.encode({
        schemaVersion: EMAIL_READY_VERSION,
        messageId: `bench-${tag}-${i}`,
        tenant: TENANT,
        priority: 'transactional',
        domain,
        envelope: { from: FROM.email, to: [recipient(tag, i)] },
        raw: raws[i % raws.length],
        acceptedAt,
        attempt: 1,
      });
      return { key: domain, value };
    }),
  );
}

export interface EndToEndRun extends StageRun {
  /** Messages per second accepted by ingest (first request → last 202). */
  acceptRate?: number;
}

/** Where to POST: the rig's ingest (its key by default), or another send API such as `npm start`'s. */
export interface SendApi {
  ingestUrl: string;
  apiKey?: string;
}

/** POSTs n messages to /v1/emails/batch (`batchSize` each, `inFlight` requests at once); accepted → 250 at the sink. */
export async function endToEndHttp(api: SendApi, sink: SinkProcess, tag: string, n: number, batchSize: number, inFlight: number, timeoutMs: number, signal: AbortSignal, alongside = 0): Promise<EndToEndRun> {
  // `alongside`: messages the caller sends meanwhile through other requests; the window still ends at the n-th of the batch's.
  const { done } = await sink.expect(n + alongside, timeoutMs, signal);
  const startAt = epochMs();
  let next = 0;
  let lastAcceptedAt = startAt;
  const lane = async (): Promise<void> => {
    while (next < n) {
      const from = next;
      next = Math.min(n, next + batchSize);
      const messages = Array.from({ length: next - from }, (_, k) => ingestBody(tag, from + k));
      const res = await fetch(`${api.ingestUrl}/v1/emails/batch`, {
        method: 'POST',
        headers: { authorization: `Bearer ${api.apiKey ?? API_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ messages }),
        signal: AbortSignal.any([signal, AbortSignal.timeout(30_000)]),
      });
      const body = await res.text();
      if (res.status !== 202) throw new Error(`POST /v1/emails/batch answered ${res.status}: ${body.slice(0, 500)}`);
      lastAcceptedAt = epochMs();
    }
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
  const w = await done;
  return { ...stageRun(n, startAt, w.firstAt, w.lastAt), acceptRate: n / ((lastAcceptedAt - startAt) / 1000) };
}

/** Produces n EmailRequested records straight to email.requested (as any service may); produce → 250 at the sink. */
export async function endToEndKafka(rig: Rig, sink: SinkProcess, tag: string, n: number, timeoutMs: number, signal: AbortSignal): Promise<EndToEndRun> {
  const { done } = await sink.expect(n, timeoutMs, signal);
  const { startAt, endAt } = await rig.preloadRequested(tag, n);
  const w = await done;
  return { ...stageRun(n, startAt, w.firstAt, w.lastAt), acceptRate: n / ((endAt - startAt) / 1000) };
}
