/** Options of the renderer (`services/renderer`). */
import { section, int, str } from './schema-helpers.js';

export const RendererSection = section(
  {
    concurrency: int(64, 'Records rendered at once.', 1),
    templatesDir: str('', 'Directory of file templates (GitOps); empty for none.'),
  },
  'Renderer',
);
