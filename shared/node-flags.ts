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
export const TRACKER_NODE_FLAGS: readonly string[] = ['--initial-old-space-size=128'];
