/**
 * Node flags a stage process runs with when it runs one stage: the image sets them in
 * NODE_OPTIONS (test/deploy checks it), `postline start --process-per-stage` passes them to the
 * renderer's and the dispatcher's processes, and the send-path benchmark starts its stage
 * processes with them. `postline start`'s default layout does not (services/embedded/main.ts,
 * layoutNodeFlags): there eight stages share one process, whose young generation, once grown
 * at start-up, stays grown at rest.
 *
 * A larger young generation. V8's scavenger copies every live young object on each minor GC; a
 * stage keeps dozens of records in flight, each holding tens of KB of short-lived objects (the
 * request, rendered parts, MIME, Kafka buffers) for a few milliseconds. With the default
 * semi-spaces (at most 16 MB) these survive several scavenges and are copied, then promoted;
 * with 64 MB most die young. Measured on the renderer (issue 3 note): ~15–20% less CPU per
 * message and a higher render rate, for up to ~130 MB more RSS under load (and at rest, once grown).
 */
export const STAGE_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=64'];
/**
 * An initial old generation of 128 MB, for processes with a small live heap and a high allocation
 * rate (the tracker, the SMTP gateway, npm start's broker: see each below). Node refuses it in NODE_OPTIONS.
 */
const INITIAL_OLD_SPACE = '--initial-old-space-size=128';

/** One memory-reducer GC instead of three when a process goes quiet (EMBEDDED_ANALYTICS_NODE_FLAGS). */
const SINGLE_REDUCE_GC = '--memory-reducer-single-gc';

// Not here: --initial-old-space-size (SMTP_GATEWAY_NODE_FLAGS, below). On the renderer, the dispatcher and
// the ingest (`npm run bench -- send-path`, with and without it, same hour) it changed no stage's CPU per
// message or rate and cost 30–50 MB more RSS: their heaps are large enough already.

/**
 * The tracker's node flags instead of STAGE_NODE_FLAGS (its Kubernetes deployment, its compose
 * service, `postline start --process-per-stage` and the tracker bench). The tracker answers
 * each hit in ~0.2 ms of CPU and is judged by its p99, so what it must avoid is pauses, not
 * copying: its live heap (~31 MB, mostly the module graph) sits just under V8's first old
 * generation limit, so at 2,000 hits/s V8 ran a mark-compact every 0.5–2 s (40 in 30 s with
 * 64 MB semi-spaces, 5 with the default), each 10–25 ms — the p99. An initial old generation of
 * 128 MB lets garbage accumulate to that before the first mark-compact (one in 30 s); the
 * default semi-spaces keep scavenges short (64 MB ones took 8 ms each). Measured with `npm run
 * bench -- tracker` on a quiet machine, the bare route run with the same flags: p99 8.7–14.2 ms
 * in three runs (bare 6.8–7.0) against 24.5–36 with STAGE_NODE_FLAGS and 19.0 with no flags. The price is up to
 * ~100 MB more heap under load before V8 collects. Node refuses this flag in NODE_OPTIONS, so it
 * goes on the command line (and NODE_OPTIONS is cleared of the image's STAGE_NODE_FLAGS).
 */
export const TRACKER_NODE_FLAGS: readonly string[] = [INITIAL_OLD_SPACE];

/**
 * The SMTP gateway's node flags instead of STAGE_NODE_FLAGS (its Kubernetes deployment, its
 * compose service, `postline start --process-per-stage` and the gateway bench, whose bare server
 * gets the same). The gateway's live heap is small (~20 MB) while it turns over lots of
 * off-heap memory: each message's ~4 kB arrives in TLS chunks, becomes a ~5.6 kB record, and
 * kafkajs encodes a produce request by copying it through seven nested, doubling encoders
 * (~11× the request's bytes in fresh buffers: a 30 kB request allocates ~340 kB). V8 counts
 * that memory against the old generation's limit, which it sizes from the live heap: with
 * 20 MB live it started a mark-compact every ~50 ms ("GC in old space requested"), and the
 * gateway spent ~0.5 ms of CPU per message where the produce alone, on a grown heap, costs
 * ~0.1. An initial old generation of 128 MB keeps the limit there. Measured with `npm run bench
 * -- smtp-gateway` (16 connections, two alternated pairs): gateway CPU per message 0.45 / 0.52
 * → 0.35 / 0.34 ms, the ratio to the bare server 0.56 / 0.50 → 0.61 / 0.55 (a produce-only probe:
 * 0.41 → 0.12 ms per message). The price is the heap growing to ~128 MB before it is collected.
 * Node refuses the flag in NODE_OPTIONS, so it goes on the command line (as the tracker's).
 */
export const SMTP_GATEWAY_NODE_FLAGS: readonly string[] = [...STAGE_NODE_FLAGS, INITIAL_OLD_SPACE];

/**
 * `postline start`'s broker's node flags (and `--memory-reducer-single-gc`: see
 * EMBEDDED_ANALYTICS_NODE_FLAGS below). Like the SMTP gateway (above), the broker keeps a
 * small live heap (~20–30 MB) while every produce request and fetch response passes through it
 * as buffers, so V8, sizing the old generation's limit from the live heap, collected it far more
 * often than its garbage called for. Measured with `npm run bench -- embedded` (the flag on every
 * process, against none, same hour): the broker's CPU per message under the 20,000-message batch
 * 0.161 → 0.127 ms (a batch probe: 0.17–0.18 → 0.13–0.14), for more memory at load (the bench's
 * median 56 → 63 MB; 54–90 MB in four probe runs, as the heap may now fill to 128 MB) and none at
 * rest. The co-hosted stages process got nothing measurable from it (CPU per message;
 * idle CPU over 60 s in two alternated probe pairs, single-message latency in three) for ~50 MB
 * more at rest, and analytics nothing either, so they keep V8's defaults.
 */
export const BROKER_NODE_FLAGS: readonly string[] = [INITIAL_OLD_SPACE, SINGLE_REDUCE_GC];

/**
 * Analytics' JavaScript keeps little alive: a heap snapshot in the middle of npm start's
 * 20,000-message batch found 26 MB live (the module graph, the rows waiting for their insert);
 * its work is decoding events into rows, and the rows live a second. Yet V8 let its heap grow to
 * 80–150 MB before collecting (young generation up to 2 × 16 MB, an old generation first
 * collected at a limit sized for large heaps, then grown up to 4×). So: semi-spaces of at most
 * 4 MB, a first old-generation limit of 32 MB, and growth of at most 1.5× past what a
 * mark-compact left live. Under the batch (a probe like the embedded bench: peak PSS per process
 * and CPU per message from /proc; three alternated pairs, these flags against none): analytics'
 * peak 466 / 435 / 432 → 405 / 385 / 394 MB, the install's 1,036 / 1,019 / 1,018 → 990 / 969 /
 * 987 MB; analytics' CPU per message 0.347 / 0.281 / 0.224 → 0.257 / 0.239 / 0.275 ms (pair
 * ratios 0.74, 0.85, 1.23: the VM's drift, no cost seen). Added one at a time (one run each):
 * none 478, the first old-generation limit 443, with the growth limit 410, with the small
 * semi-spaces too 387 MB. Idle, 60 s from 5 s after start, three alternated pairs (ms of CPU a
 * second): analytics 5.50 / 6.17 / 5.67 against 5.83 / 5.50 / 5.67, the install 2.40 / 2.40 /
 * 2.37 % against 2.38 / 2.35 / 2.32 % (a slow hour). Single messages at 10/s for 40 s, three
 * alternated pairs, accepted → 250 p50 / p99: 4.8 / 16.0, 5.2 / 19.5, 4.8 / 19.3 ms against
 * 4.9 / 17.8, 5.0 / 17.0, 4.8 / 15.9 (the p99 of 400 messages is its 4th-slowest; within the
 * target either way).
 */
const ANALYTICS_SMALL_HEAP = ['--max-semi-space-size=4', '--initial-old-space-size=32', '--heap-growing-percent=50'];

/**
 * `postline start`'s analytics process's node flags (it runs alone in every layout there): a small
 * heap that is collected early (ANALYTICS_SMALL_HEAP, below) and one memory-reducer GC.
 *
 * `--memory-reducer-single-gc`, for analytics and the broker (BROKER_NODE_FLAGS): when a process
 * goes quiet (after start-up, after a burst), V8's memory reducer runs up to three mark-compacts
 * to shrink its heap. With `--trace-gc` at rest after start the first took analytics from 32.9 to
 * 21.6 MB (broker 16.1 → 10.6) and the second and third found nothing (21.6 → 21.5 → 21.5;
 * 10.6 → 10.6 → 10.6) while costing as much. One GC: over 60 s from 5 s after start (a probe,
 * two alternated pairs), analytics 0.47 / 0.40 → 0.30 / 0.28 % of a core and the broker 0.27 /
 * 0.22 → 0.20 / 0.18 %; the flag on analytics and the broker alone, one pair: the whole install
 * 1.63 → 1.37 %, PSS at rest the same (426 → 433 MB). The co-hosted stages process keeps three:
 * there the second one still shrinks (after a 20,000-message batch, one GC left the install at
 * rest at 610 MB against 562, the stages process 204 against 174 MB, for ~0.35 % of a core in
 * the first minute of quiet).
 */
export const EMBEDDED_ANALYTICS_NODE_FLAGS: readonly string[] = [...ANALYTICS_SMALL_HEAP, SINGLE_REDUCE_GC];

/**
 * A heap that grows at most 2× past what the last mark-compact left live (V8 otherwise picks up
 * to 4× when it judges collecting costly). For npm start's co-hosted stages process and its
 * second renderer: under a large batch the API's requests and the stages' records live long
 * enough to be promoted, and the stages process's old generation grew to ~3× its ~75 MB live
 * heap before V8 collected it. Runs of npm start under the 20,000-message batch (a probe like
 * the embedded bench: peak PSS per process, CPU per message from /proc), the flag on the stages
 * process against none, five alternated pairs: its peak 364–377 → 260–268 MB, its CPU per
 * message 1.03 → 1.02 ms (medians; pair by pair 0.86–1.19×; two later pairs 1.20× and 1.03×, the
 * median of all seven 0.99×), the install's peak 1,149 → 1,059 MB; on the second renderer too,
 * three pairs: its peak 279–306 → 243–244 MB, CPU per message 0.77 → 0.79 ms. At 50 % the
 * stages process came to ~220 MB but its CPU rose in one of two pairs (+23 %); 100 % it is.
 * Analytics has tighter limits of its own (ANALYTICS_SMALL_HEAP).
 */
const HEAP_GROWS_2X = '--heap-growing-percent=100';

/**
 * `postline start`'s co-hosted stages process (every stage but analytics in one process): a heap
 * that grows at most 2× (HEAP_GROWS_2X), and `--no-lazy`: V8 compiles every function of a module
 * when the module loads instead of at its first call. The first message after a start otherwise
 * compiles, on its way, the code of each step it takes for the first time (the route, the
 * produce and fetch paths, render, SMTP), in four hops. Measured with `node --import tsx
 * test/bench/single-message-hops.ts 3 200` (accepted → 250 of the first message, alternating,
 * four starts each): 55–76 ms without,
 * 37–52 ms with; `npm run bench -- embedded` (three starts): 33.2 ms (23.9–45.4) against 51.8 ms
 * (37.4–69.6) earlier the same day. The price: ~45 MB more at rest in that process (the bytecode
 * of functions never called: 152 against 108 MB PSS), start-up not measurably longer. `--no-lazy`
 * is not on the second renderer, which starts under load and should start rendering soon, nor on
 * analytics.
 */
export const COHOSTED_NODE_FLAGS: readonly string[] = ['--no-lazy', HEAP_GROWS_2X];

/**
 * `postline start`'s second renderer (started under a backlog): V8's default young generation (at
 * most 16 MB semi-spaces, not the 64 MB of STAGE_NODE_FLAGS) and a heap that grows at most 2×
 * (HEAP_GROWS_2X). Its memory at load was mostly its young generation; npm start's memory target
 * (≤ 900 MB PSS summed at full load) is met only without it. `npm run bench -- embedded`, two
 * alternated pairs (16 MB / 64 MB semi-spaces): the install's peak of the summed PSS 878 / 955 and
 * 853 / 968 MB, the second renderer's peak 154 / 240 and 158 / 242 MB; throughput 0.48 / 0.49× and
 * 0.45 / 0.62× of the raw libraries' limit — in the second pair every process spent 40–70 % more
 * CPU per message in the 16 MB run (analytics 0.468 against 0.275 ms: the VM's speed, not the
 * flag). Its CPU per message against the co-hosted process's in the same run: 1.20 and 1.12×
 * with 16 MB, 1.05 and 1.05× with 64 MB — rendering costs it ~10 % more (+9–20 % with 32 MB
 * ones, session 18), ~4 % of the install's CPU per message. A renderer deployed alone
 * (`--process-per-stage`, the image) keeps STAGE_NODE_FLAGS: there CPU, not a shared memory
 * budget, is what it is sized by.
 */
export const SECOND_RENDERER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=16', HEAP_GROWS_2X];

/**
 * Stages whose deployments run node with their own flags on the command line (and an empty
 * NODE_OPTIONS, so the image's STAGE_NODE_FLAGS do not apply): test/deploy/command-line-flags.test.ts.
 */
export const COMMAND_LINE_FLAGS: Readonly<Record<string, readonly string[]>> = {
  tracker: TRACKER_NODE_FLAGS,
  'smtp-gateway': SMTP_GATEWAY_NODE_FLAGS,
};
