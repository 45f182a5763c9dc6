/**
 * The parent's handle on the SMTP sink process (send-path-sink-child.ts): its port and pid,
 * delivery counts, and `expect(n)`, which resolves with the times of the first and the n-th
 * message answered 250 after the call (or rejects when `timeoutMs` passes, with the count so far).
 */
import type { ChildProcess } from 'node:child_process';
import { forkHelper, request, stopChild } from './send-path-processes.js';

export interface SinkWindow {
  /** Epoch ms of the first and the n-th delivery. */
  firstAt: number;
  lastAt: number;
  /** TCP connections accepted meanwhile. */
  connections: number;
}

export interface SinkStats {
  delivered: number;
  connections: number;
  open: number;
}

export interface SinkProcess {
  host: string;
  port: number;
  pid: number;
  stats(): Promise<SinkStats>;
  /**
   * Arms a count of `n` deliveries from now; `done` resolves when they have arrived. Await the
   * returned promise before starting the work, so no delivery is missed.
   */
  expect(n: number, timeoutMs: number, signal?: AbortSignal): Promise<{ done: Promise<SinkWindow> }>;
  /**
   * Reports each message to a recipient starting with `prefix` as it arrives (epoch ms), until
   * the returned function is called.
   */
  watch(prefix: string, onArrival: (rcpt: string, at: number) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

let nextId = 1;

export async function startSinkProcess(): Promise<SinkProcess> {
  const child: ChildProcess = forkHelper('send-path-sink-child.ts');
  const { port } = await request<{ port: number }>(child, { cmd: 'noop' }, 'listening', 30_000);
  const stats = (): Promise<SinkStats> => request<SinkStats>(child, { cmd: 'stats' }, 'stats', 10_000);
  return {
    host: '127.0.0.1',
    port,
    pid: child.pid as number,
    stats,
    async expect(n, timeoutMs, signal) {
      const id = nextId++;
      const done = new Promise<SinkWindow>((resolve, reject) => {
        const onMessage = (m: { type: string; id?: number } & SinkWindow): void => {
          if (m.type === 'reached' && m.id === id) finish(undefined, m);
        };
        const fail = async (why: string): Promise<void> => {
          child.send({ cmd: 'cancel' });
          const s = await stats().catch(() => undefined);
          finish(new Error(`sink: ${n} deliveries not reached (${why}); ${s ? `${s.delivered} delivered in all, ${s.open} connections open` : 'sink not answering'}`));
        };
        const timer = setTimeout(() => void fail(`${timeoutMs} ms passed`), timeoutMs);
        const onAbort = (): void => void fail('the suite time limit passed');
        signal?.addEventListener('abort', onAbort, { once: true });
        const onExit = (): void => finish(new Error('the sink process exited'));
        const finish = (err?: Error, w?: SinkWindow): void => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          child.off('message', onMessage);
          child.off('exit', onExit);
          if (err) reject(err);
          else resolve({ firstAt: w!.firstAt, lastAt: w!.lastAt, connections: w!.connections });
        };
        child.on('message', onMessage);
        child.once('exit', onExit);
      });
      done.catch(() => undefined); // the caller awaits it later; never an unhandled rejection meanwhile
      await request(child, { cmd: 'expect', id, n }, 'expecting', 10_000);
      return { done };
    },
    async watch(prefix, onArrival) {
      const onMessage = (m: { type: string; rcpt?: string; at?: number }): void => {
        if (m.type === 'arrival') onArrival(m.rcpt as string, m.at as number);
      };
      child.on('message', onMessage);
      await request(child, { cmd: 'watch', prefix }, 'watching', 10_000);
      return async () => {
        await request(child, { cmd: 'watch' }, 'watching', 10_000);
        child.off('message', onMessage);
      };
    },
    close: () => stopChild(child, 'SIGTERM', 5_000),
  };
}
