/**
 * A child process for the crash test: runs the analytics stage on its own embedded engine
 * (`ANALYTICS_CRASH` holds the settings as JSON), prints `STORED <rows>` once its first insert
 * returned, and then never lets the sink commit — the parent SIGKILLs it there, between the
 * insert and the offset commit.
 */
import { startAnalytics } from '../../../services/analytics/main.js';
import { analyticsConfig } from './sink-harness.js';

const s = JSON.parse(process.env.ANALYTICS_CRASH ?? '{}') as { bootstrap: string; database: string; dataDir: string; topic: string; groupId: string; batchMaxRows: number };
const config = analyticsConfig(s.bootstrap, {
  'analytics.database': s.database,
  'analytics.dataDir': s.dataDir,
  'analytics.groupId': s.groupId,
  'analytics.batchMaxRows': s.batchMaxRows,
  'analytics.batchMaxWaitMs': 60_000,
  // The group hands the dead process's partitions on after this long.
  'analytics.sessionTimeoutMs': 6000,
});
await startAnalytics(config, {
  listen: false,
  topic: s.topic,
  authenticate: () => null,
  wrapWriter: (w) => ({
    ...w,
    async insert(rows, token) {
      await w.insert(rows, token);
      process.stdout.write(`STORED ${rows.length}\n`);
      await new Promise(() => undefined);
    },
  }),
});
