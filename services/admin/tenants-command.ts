/** `postline tenants create|list` (see admin-command.ts). */
import { mainFor } from './admin-command.js';

export const main = mainFor('tenants');
