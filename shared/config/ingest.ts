/** Options of the ingest API (`services/ingest`). */
import { section, int, str } from './schema-helpers.js';

export const IngestSection = section(
  {
    host: str('0.0.0.0', 'Interface the send API listens on.'),
    port: int(8080, 'Port of the send API.'),
  },
  'Ingest API',
);
