/**
 * Loads, at import, the kafkajs modules it would otherwise `require` on the first message after a
 * start. kafkajs requires a request's encoder and decoder the first time that request is sent:
 * the first produce of a process loads Produce v7 (and the v6, v5, v3 it builds on) and the
 * record encoders, the first offset commit OffsetCommit v5 — fifteen modules, each resolved
 * through tsx's loader hooks on a checkout, all on the path of the first message through each
 * hop. The versions are the newest kafkajs 2.2.4 speaks, which the Postline broker and any Kafka
 * since 2.1 accept, so they are the ones it negotiates; a client that negotiates lower still
 * loads that version when it first needs it, as before.
 *
 * They are loaded the way kafkajs loads them — by building (not sending) a request through the
 * request's own `protocol({ version })` — because kafkajs keeps calling `require('./v7/request')`
 * for every request it sends, and Node answers a repeated `require` from its fast per-parent
 * cache only when that same parent module loaded it first. Loaded from here under their full
 * names, every later produce and commit resolved its two modules again: ~12 µs a request
 * against ~0.7 µs (measured, Node 20), ~1 % of the stages process's CPU under a batch.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

interface RequestIndex {
  protocol(o: { version: number }): (args: Record<string, unknown>) => unknown;
}

/** Each request's index module, the version to load, and arguments to build (never encode) one with. */
const PRELOADED: Array<[string, number, Record<string, unknown>]> = [
  ['requests/produce', 7, { acks: -1, timeout: 30_000, topicData: [] }],
  ['requests/offsetCommit', 5, { groupId: '', groupGenerationId: 0, memberId: '', topics: [] }],
];

for (const [index, version, args] of PRELOADED) (require(`kafkajs/src/protocol/${index}`) as RequestIndex).protocol({ version })(args);
// The record encoders, which a record batch requires at its module's top (once).
for (const m of ['recordBatch/record/v0/index.js', 'recordBatch/header/v0/index.js']) require(`kafkajs/src/protocol/${m}`);
