/** Options of the dispatcher (`services/dispatcher`). */
import { section, int } from './schema-helpers.js';

export const DispatcherSection = section(
  {
    concurrencyCritical: int(50, 'Messages in flight at once from email.dispatch.critical.', 1),
    concurrencyTransactional: int(20, 'Messages in flight at once from email.dispatch.transactional.', 1),
    concurrencyBulk: int(10, 'Messages in flight at once from email.dispatch.bulk.', 1),
  },
  'Dispatcher',
);
