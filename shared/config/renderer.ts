/** Options of the renderer (`services/renderer`). */
import { Type } from '@sinclair/typebox';
import { section, int, str } from './schema-helpers.js';

const MiB = 1024 * 1024;

/** DKIM signing of rendered messages. */
export const DkimSection = section(
  {
    keysDir: str('', 'Directory of DKIM private keys, <dir>/<domain>/<selector>.pem (a mounted Secret works); empty: no message is signed. Layout, rotation and the DNS records: services/renderer/README.md.'),
    missingKey: Type.Union([Type.Literal('unsigned'), Type.Literal('refuse')], {
      default: 'unsigned',
      description: 'A message whose From domain (or a parent of it up to the registrable domain) has no key: "unsigned" sends it unsigned; "refuse" dead-letters it (DKIM_KEY_MISSING, with a failed event). Only applies when keysDir is set.',
    }),
    rescanMs: int(60_000, 'The keys directory is re-read on every change it reports and also this often, in case a change went unseen; 0: changes only.'),
  },
  'DKIM signing',
);

// --- Unsubscribe (issue 13): which messages get List-Unsubscribe. ---
const PriorityList = (opts: { default?: string[]; description?: string } = {}) =>
  Type.Array(Type.String({ pattern: '^(critical|transactional|bulk)$' }), { uniqueItems: true, ...opts });

/** Which messages carry List-Unsubscribe (with `feedback.keys` and `feedback.unsubscribeUrl` or `feedback.returnPathDomain` set). */
export const UnsubscribeSection = section(
  {
    priorities: PriorityList({
      default: ['bulk'],
      description: 'Priorities whose messages get List-Unsubscribe (and List-Unsubscribe-Post) unless the request says "unsubscribe": false: bulk,transactional (or JSON ["bulk"]). A request\'s "unsubscribe": true adds them to a message of any priority.',
    }),
    tenants: Type.Record(Type.String({ minLength: 1, maxLength: 128 }), PriorityList(), {
      default: {},
      description: 'Per-tenant replacement of priorities, as JSON: {"acme":["bulk","transactional"],"globex":[]}. A tenant not named here uses priorities.',
    }),
  },
  'Unsubscribe headers',
);
// --- end Unsubscribe ---

export const RendererSection = section(
  {
    concurrency: int(64, 'Records rendered at once, in each lane (each priority’s request topic and the shared email.requested).', 1),
    yieldToCriticalMs: int(250, 'While critical requests are being rendered, a record of another lane waits up to this long before it starts (the renderer\'s CPU goes to critical mail first); 0 turns it off.'),
    maxInFlightBytes: int(32 * MiB, 'Sum of the sizes of the records being rendered at once in each lane, bounding memory when messages carry attachments; a larger record is rendered alone.', 1024),
    templatesDir: str('', 'Directory of file templates (GitOps), available to every tenant; empty for none. Layout: services/renderer/README.md.'),
    templatesReloadMs: int(30000, 'How often the templates directory is re-read for changes; 0 reads it only at start-up.'),
    templateCacheSize: int(1000, 'Compiled templates kept in memory (least recently used dropped first).', 1),
    maxRecordBytes: int(32 * MiB, 'Larger request records (email.requested, email.requested.<priority>) are dead-lettered without being parsed.', 1024),
    dkim: DkimSection,
    unsubscribe: UnsubscribeSection,
    maxMessageBytes: int(25 * MiB, 'Larger rendered messages are dead-lettered (MESSAGE_TOO_LARGE). Postline creates the dispatch, retry and dead-letter topics to accept them (max.message.bytes = this × 1.25 + 1 MiB); a dispatch topic with a smaller limit (read from the broker at start-up) lowers it.', 1024),
  },
  'Renderer',
);
