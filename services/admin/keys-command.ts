/** `postline keys create|list|revoke` (see admin-command.ts). */
import { mainFor } from './admin-command.js';

export const main = mainFor('keys');
