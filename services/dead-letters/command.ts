/**
 * `postline dead list | replay`: inspect and replay what no stage could process, straight from
 * `email.dead` (every tenant; the API offers the same per tenant). Configured like every stage
 * (POSTLINE_KAFKA_BROKERS, ...). Output is a table, or JSON lines with --json.
 */
import { parseArgs } from 'node:util';
import pino from 'pino';
import { loadPostlineConfig } from '../../shared/config.js';
import { createKafka } from '../../shared/kafka/client.js';
import { createLogger } from '../../shared/logger.js';
import { produceWith, readDeadLetters, replayDeadLetters, summarize, type DeadLetterSummary, type LetterFilter } from '../../shared/dead-letters/dead-letters.js';

const HELP = `usage: postline dead list   [--since <time>] [--id <messageId>]... [--tenant <t>] [--code <CODE>] [--json]
       postline dead replay (--id <messageId>... | --since <time>) [--tenant <t>] [--code <CODE>] [--dry-run] [--json]

  list     dead letters on email.dead, oldest first (reason, stage, where they came from)
  replay   produce them again: deliveries (expired, failed in the dispatcher) go back to
           email.dispatch.<priority> as their next attempt, with a fresh maximum age counted from
           the replay; anything else goes back verbatim to the topic it came from

  <time>   an ISO-8601 time (2025-03-01T12:00:00Z) or a span back from now (90s, 30m, 2h, 7d)

Reads the Kafka settings from the environment like every stage (POSTLINE_KAFKA_BROKERS, ...).
`;

const SPAN = /^(\d+)(s|m|h|d)$/;
const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `2h` → now − 2 h; an ISO time → that time (ms). Throws on anything else. */
export function parseSince(value: string, now = Date.now()): number {
  const span = SPAN.exec(value.trim());
  if (span) return now - Number(span[1]) * UNIT_MS[span[2]];
  const t = Date.parse(value);
  if (Number.isNaN(t) || !/^\d{4}-\d{2}-\d{2}/.test(value)) throw new Error(`--since: "${value}" is neither an ISO time nor a span like 30m, 2h, 7d`);
  return t;
}

/** One line per dead letter for the table. */
export function formatRow(s: DeadLetterSummary): string {
  const to = s.recipients ? ` to=${s.recipients.join(',')}` : '';
  return `${s.failedAt}  ${s.id.padEnd(9)} ${(s.tenant ?? '-').padEnd(12)} ${(s.messageId ?? '-').padEnd(36)} ${s.code.padEnd(20)} ${s.stage}/${s.sourceTopic}${to}  ${s.reason}`;
}

interface Args {
  action: 'list' | 'replay';
  filter: LetterFilter;
  json: boolean;
  dryRun: boolean;
}

function parse(argv: string[]): Args | undefined {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      since: { type: 'string' },
      id: { type: 'string', multiple: true },
      tenant: { type: 'string' },
      code: { type: 'string' },
      json: { type: 'boolean', default: false },
      'dry-run': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const action = positionals[0];
  if (values.help || (action !== 'list' && action !== 'replay') || positionals.length > 1) return undefined;
  if (action === 'replay' && !values.id?.length && values.since === undefined) throw new Error('replay needs --id <messageId> or --since <time>');
  return {
    action,
    json: values.json,
    dryRun: values['dry-run'],
    filter: {
      ...(values.since !== undefined ? { since: parseSince(values.since) } : {}),
      ...(values.id?.length ? { messageIds: values.id } : {}),
      ...(values.tenant ? { tenant: values.tenant } : {}),
      ...(values.code ? { code: values.code } : {}),
    },
  };
}

export async function main(argv: string[]): Promise<void> {
  let args: Args | undefined;
  let config;
  try {
    args = parse(argv);
    config = loadPostlineConfig();
  } catch (err) {
    process.stderr.write(`postline dead: ${(err as Error).message}\n\n${HELP}`);
    process.exit(2);
  }
  if (!args) {
    process.stdout.write(HELP);
    process.exit(argv.includes('--help') || argv.includes('-h') ? 0 : 2);
  }
  // Logs go to stderr: stdout carries the list (or JSON lines) for pipes.
  const logger = createLogger('dead-letters', { level: config.log.level === 'info' ? 'warn' : config.log.level }, pino.destination({ fd: 2, sync: true }));
  const kafka = createKafka(config.kafka, 'dead-letters', logger);
  const { entries, complete } = await readDeadLetters(kafka, args.filter);
  if (!complete) process.stderr.write('warning: email.dead was not read to its end in time; the list may be incomplete\n');
  const out = (line: string): boolean => process.stdout.write(`${line}\n`);
  if (args.action === 'list' || args.dryRun) {
    for (const e of entries) out(args.json ? JSON.stringify(summarize(e)) : formatRow(summarize(e)));
    if (!args.json) process.stderr.write(`${entries.length} dead letter(s)${args.dryRun ? ' would be replayed' : ''}\n`);
    return;
  }
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    const results = await replayDeadLetters(produceWith(producer), entries);
    for (const r of results) out(args.json ? JSON.stringify(r) : `${r.id.padEnd(9)} ${(r.messageId ?? '-').padEnd(36)} ${r.error ? `not replayed: ${r.error}` : `→ ${r.topic} (${r.kind})`}`);
    process.stderr.write(`${results.filter((r) => !r.error).length} of ${results.length} dead letter(s) replayed\n`);
    if (results.some((r) => r.error)) process.exitCode = 1;
  } finally {
    await producer.disconnect();
  }
}
