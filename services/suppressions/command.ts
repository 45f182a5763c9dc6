/**
 * `postline suppressions list | add | remove | import FILE`: the tenant's suppression list over
 * the send API (`/v1/suppressions`), as any user or script would use it. Over HTTP rather than
 * Kafka on purpose: the API key says which tenant is asking (a tenant's operator needs no
 * broker access and cannot reach another tenant's list), and writes go through the same checks
 * (address normalization, never weakening a stronger entry) as every other client's.
 */
import { apiClient } from '../../shared/http/api-client.js';
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { parse as parseCsv } from 'csv-parse/sync';
import { MAX_SUPPRESSION_ITEMS } from '../../shared/suppressions/suppression-book.js';

const HELP = `usage: postline suppressions list   [--address PREFIX] [--reason R] [--list L] [--json]
       postline suppressions add    ADDRESS [--list L] [--reason R] [--note TEXT] [--expires ISO-TIME]
       postline suppressions remove ADDRESS [--list L]
       postline suppressions import FILE.csv

  list     the tenant's entries, in address order (every page)
  add      suppress an address (reason manual unless given; tenant-wide unless --list)
  remove   lift a suppression (the tenant-wide one, or the one of --list)
  import   a CSV file: address[,list,reason,note] per line (a header line is optional),
           sent in batches of ${MAX_SUPPRESSION_ITEMS.toLocaleString('en')}

  --url URL   the send API (default POSTLINE_API_URL, else http://127.0.0.1:8080)
  --key KEY   an API key of the tenant (default POSTLINE_API_KEY)
  reasons     hard-bounce soft-bounce complaint unsubscribe manual
`;

export interface CommandIo {
  env: Record<string, string | undefined>;
  fetch: typeof fetch;
  out(line: string): void;
}

class UsageError extends Error {}


function row(s: { address: string; list?: string; reason: string; createdAt: string; expiresAt?: string; note?: string; category?: string }): string {
  return `${s.address.padEnd(40)} ${(s.list ?? '*').padEnd(16)} ${s.reason.padEnd(12)} ${(s.category ?? '-').padEnd(16)} ${s.createdAt}  ${s.expiresAt ? `until ${s.expiresAt}` : 'until removed'}${s.note ? `  ${s.note}` : ''}`;
}

/** CSV rows → import items (address[,list,reason,note]); a first line starting with `address` is a header. */
export function importItems(csv: string): Array<Record<string, string>> {
  const rows = parseCsv(csv, { skip_empty_lines: true, trim: true, relax_column_count: true, comment: '#' }) as string[][];
  if (rows[0]?.[0]?.toLowerCase() === 'address') rows.shift();
  return rows.map(([address, list, reason, note]) => ({ address, ...(list ? { list } : {}), ...(reason ? { reason } : {}), ...(note ? { note } : {}) }));
}

/** Runs the command; resolves with the exit code. */
export async function runSuppressions(argv: string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      url: { type: 'string' },
      key: { type: 'string' },
      address: { type: 'string' },
      reason: { type: 'string' },
      list: { type: 'string' },
      note: { type: 'string' },
      expires: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const [action, arg] = positionals;
  if (values.help || !action) {
    io.out(HELP);
    return values.help ? 0 : 2;
  }
  const key = values.key ?? io.env.POSTLINE_API_KEY;
  if (!key) throw new UsageError('an API key is needed: --key or POSTLINE_API_KEY');
  const client = apiClient(values.url ?? io.env.POSTLINE_API_URL ?? 'http://127.0.0.1:8080', key, io.fetch);
  const listQuery = values.list ? `?list=${encodeURIComponent(values.list)}` : '';
  switch (action) {
    case 'list': {
      let cursor: string | undefined;
      do {
        const q = new URLSearchParams({ limit: '1000', ...(values.address ? { address: values.address } : {}), ...(values.reason ? { reason: values.reason } : {}), ...(values.list ? { list: values.list } : {}), ...(cursor ? { cursor } : {}) });
        const { json } = await client.call('GET', `/v1/suppressions?${q}`);
        for (const s of json.items) io.out(values.json ? JSON.stringify(s) : row(s));
        cursor = json.nextCursor;
      } while (cursor);
      return 0;
    }
    case 'add': {
      if (!arg) throw new UsageError('add needs an ADDRESS');
      const body = { address: arg, ...(values.list ? { list: values.list } : {}), ...(values.reason ? { reason: values.reason } : {}), ...(values.note ? { note: values.note } : {}), ...(values.expires ? { expiresAt: values.expires } : {}) };
      const { json } = await client.call('POST', '/v1/suppressions', body);
      if (json.added) io.out(`suppressed ${json.items[0].address}${json.items[0].list ? ` for list ${json.items[0].list}` : ''} (${json.items[0].reason})`);
      else io.out(`already suppressed: ${json.existing[0].address} (${json.existing[0].reason}); left as it is`);
      return 0;
    }
    case 'remove': {
      if (!arg) throw new UsageError('remove needs an ADDRESS');
      await client.call('DELETE', `/v1/suppressions/${encodeURIComponent(arg)}${listQuery}`);
      io.out(`removed ${arg}${values.list ? ` for list ${values.list}` : ''}`);
      return 0;
    }
    case 'import': {
      if (!arg) throw new UsageError('import needs a FILE');
      const items = importItems(await readFile(arg, 'utf8'));
      let added = 0;
      let kept = 0;
      for (let i = 0; i < items.length; i += MAX_SUPPRESSION_ITEMS) {
        const { json } = await client.call('POST', '/v1/suppressions', { items: items.slice(i, i + MAX_SUPPRESSION_ITEMS) });
        added += json.added;
        kept += json.kept;
      }
      io.out(`imported ${items.length} lines: ${added} added, ${kept} already suppressed as strongly (left as they were)`);
      return 0;
    }
    default:
      throw new UsageError(`unknown action "${action}"`);
  }
}

export async function main(argv: string[] = []): Promise<void> {
  try {
    process.exitCode = await runSuppressions(argv, { env: process.env, fetch, out: (l) => process.stdout.write(`${l}\n`) });
  } catch (err) {
    process.stderr.write(`postline suppressions: ${(err as Error).message}\n${err instanceof UsageError ? `\n${HELP}` : ''}`);
    process.exitCode = err instanceof UsageError ? 2 : 1;
  }
}
