/**
 * Node flags every Postline process runs with, in every launch path: `postline start` passes
 * them to its children, the image sets them in NODE_OPTIONS (test/deploy checks it), and the
 * send-path benchmark starts its stage processes with them.
 *
 * A larger young generation. V8's scavenger copies every live young object on each minor GC; a
 * stage keeps dozens of records in flight, each holding tens of KB of short-lived objects (the
 * request, rendered parts, MIME, Kafka buffers) for a few milliseconds. With the default
 * semi-spaces (at most 16 MB) these survive several scavenges and are copied, then promoted;
 * with 64 MB most die young. Measured on the renderer (issue 3 note): ~15–20% less CPU per
 * message and a higher render rate, for up to ~130 MB more RSS under load, only while busy.
 */
export const STAGE_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=64'];
