/**
 * Dead letters: the tenant's list (newest first, no content), one letter inspected (reason,
 * stage, where it came from, the record itself), and replay of one or many (`send` scope) —
 * the same index, reads and replay the `/v1/dead-letters` routes use, the tenant checked again
 * on the letters read back.
 */
import type { FastifyInstance } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import type { ConsoleDeps } from '../console-app.js';
import { userOf } from '../console-app.js';
import { page } from '../console-views.js';
import { pageData } from '../page-data.js';
import { replayDeadLetters } from '../../../shared/dead-letters/dead-letters.js';
import { MAX_REPLAY } from '../../../shared/dead-letters/dead-letter-routes.js';
import { ConsoleDenied } from '../console-errors.js';

const LetterId = Type.String({ pattern: '^[0-9]{1,5}:[0-9]{1,20}$' });
const ReplayBody = Type.Object({ ids: Type.Union([LetterId, Type.Array(LetterId, { minItems: 1, maxItems: MAX_REPLAY })]), _csrf: Type.Optional(Type.String()) });

/** The record's value for reading: pretty JSON when it is JSON, the text otherwise, cut at 64 KiB. */
export function readableValue(value: string | null, encoding: 'utf8' | 'base64'): string {
  if (value === null) return '(no value)';
  if (encoding === 'base64') return `(binary, ${Buffer.from(value, 'base64').length} bytes)`;
  let out = value;
  try {
    out = JSON.stringify(JSON.parse(value), null, 2);
  } catch {
    // not JSON: shown as it is
  }
  return out.length > 65_536 ? `${out.slice(0, 65_536)}\n… (${out.length - 65_536} more characters)` : out;
}

export async function deadLetterRoutes(app: FastifyInstance, deps: ConsoleDeps): Promise<void> {
  app.get('/dead-letters', async (req, reply) => {
    const user = userOf(req);
    return page(reply, 'dead-letters.hbs', pageData(req, deps, 'dead-letters', 'Dead letters', { letters: deps.deadLetters.index.list(user.tenant, {}, 200) }));
  });

  app.get<{ Params: { id: string } }>('/dead-letters/:id', { schema: { params: Type.Object({ id: LetterId }) } }, async (req, reply) => {
    const user = userOf(req);
    // Listed for this tenant first: an id of another tenant's letter is not found.
    if (!deps.deadLetters.index.list(user.tenant, {}, 10_000).some((s) => s.id === req.params.id)) throw new ConsoleDenied(`no dead letter ${req.params.id}`, 404);
    const [entry] = (await deps.deadLetters.fetch([req.params.id])).filter((e) => e.letter.tenant === user.tenant);
    if (!entry) throw new ConsoleDenied(`no dead letter ${req.params.id}`, 404);
    const l = entry.letter;
    return page(reply, 'dead-letter.hbs', pageData(req, deps, 'dead-letters', `Dead letter ${entry.id}`, { id: entry.id, letter: l, value: readableValue(l.source.value, l.source.valueEncoding), headers: Object.entries(l.source.headers).map(([k, v]) => ({ k, v })) }));
  });

  app.post<{ Body: Static<typeof ReplayBody> }>('/dead-letters/replay', { config: { consoleScope: 'send' }, schema: { body: ReplayBody } }, async (req, reply) => {
    const user = userOf(req);
    const ids = new Set(Array.isArray(req.body.ids) ? req.body.ids : [req.body.ids]);
    const mine = deps.deadLetters.index.list(user.tenant, {}, 10_000).filter((s) => ids.has(s.id));
    if (mine.length === 0) throw new ConsoleDenied('none of these dead letters is yours', 404);
    const entries = (await deps.deadLetters.fetch(mine.map((s) => s.id))).filter((e) => e.letter.tenant === user.tenant);
    const replayed = await replayDeadLetters(deps.deadLetters.produce, entries, deps.deadLetters.now?.() ?? new Date());
    req.log.info({ replayed: replayed.filter((r) => !r.error).length, failed: replayed.filter((r) => r.error).length }, 'dead letters replayed from the console');
    return page(reply, 'dead-letters.hbs', pageData(req, deps, 'dead-letters', 'Dead letters', { replayed, letters: deps.deadLetters.index.list(user.tenant, {}, 200) }));
  });
}
