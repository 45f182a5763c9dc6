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
