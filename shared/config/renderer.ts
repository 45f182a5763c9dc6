/** Options of the renderer (`services/renderer`). */
import { section, int, str } from './schema-helpers.js';

const MiB = 1024 * 1024;

export const RendererSection = section(
  {
    concurrency: int(64, 'Records rendered at once, in each lane (each priority’s request topic and the shared email.requested).', 1),
    yieldToCriticalMs: int(250, 'While critical requests are being rendered, a record of another lane waits up to this long before it starts (the renderer\'s CPU goes to critical mail first); 0 turns it off.'),
    maxInFlightBytes: int(32 * MiB, 'Sum of the sizes of the records being rendered at once in each lane, bounding memory when messages carry attachments; a larger record is rendered alone.', 1024),
    templatesDir: str('', 'Directory of file templates (GitOps), available to every tenant; empty for none. Layout: services/renderer/README.md.'),
    templatesReloadMs: int(30000, 'How often the templates directory is re-read for changes; 0 reads it only at start-up.'),
    templateCacheSize: int(1000, 'Compiled templates kept in memory (least recently used dropped first).', 1),
    maxRecordBytes: int(32 * MiB, 'Larger request records (email.requested, email.requested.<priority>) are dead-lettered without being parsed.', 1024),
    maxMessageBytes: int(25 * MiB, 'Larger rendered messages are dead-lettered (MESSAGE_TOO_LARGE). Postline creates the dispatch, retry and dead-letter topics to accept them (max.message.bytes = this × 1.25 + 1 MiB); a dispatch topic with a smaller limit (read from the broker at start-up) lowers it.', 1024),
  },
  'Renderer',
);
