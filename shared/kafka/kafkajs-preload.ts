/**
 * Loads, at import, the kafkajs modules it would otherwise `require` on the first message after a
 * start. kafkajs requires a request's encoder and decoder the first time that request is sent:
 * the first produce of a process loads Produce v7 (and the v6, v5, v3 it builds on) and the
 * record encoders, the first offset commit OffsetCommit v5 — fifteen modules, each resolved
 * through tsx's loader hooks on a checkout, all on the path of the first message through each
 * hop. The versions are the newest kafkajs 2.2.4 speaks, which the Postline broker and any Kafka
 * since 2.1 accept, so they are the ones it negotiates; a client that negotiates lower still
 * loads that version when it first needs it, as before.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** The modules, under kafkajs/src/protocol/ (their own requires bring in the older versions they extend). */
const PRELOADED = [
  'requests/produce/v7/request.js',
  'requests/produce/v7/response.js',
  'requests/offsetCommit/v5/request.js',
  'requests/offsetCommit/v5/response.js',
  'recordBatch/record/v0/index.js',
  'recordBatch/header/v0/index.js',
];

for (const m of PRELOADED) require(`kafkajs/src/protocol/${m}`);
