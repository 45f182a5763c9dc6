/** The test helper that stands in for Grafana and the ClickHouse plugin must expand like they do. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expandPanelSql } from './support/grafana-macros.js';

const ctx = { fromMs: 1_700_000_000_500, toMs: 1_700_003_600_900, intervalMs: 60_000, variables: { db: 'postline', tenant: ['acme', "o'hara"] } };

test('macros expand as the plugin’s pkg/macros does', () => {
  const cases: Array<[string, string]> = [
    ['$__timeFilter(at)', 'at >= toDateTime(1700000000) AND at <= toDateTime(1700003600)'],
    ['$__timeFilter_ms(at)', 'at >= fromUnixTimestamp64Milli(1700000000500) AND at <= fromUnixTimestamp64Milli(1700003600900)'],
    ['$__dateFilter(d)', "d >= toDate('2023-11-14') AND d <= toDate('2023-11-14')"],
    ['$__timeInterval(minute)', 'toStartOfInterval(toDateTime(minute), INTERVAL 60 second)'],
    ['$__timeInterval_ms(at)', 'toStartOfInterval(toDateTime64(at, 3), INTERVAL 60000 millisecond)'],
    ['$__fromTime, $__toTime', 'toDateTime(1700000000), toDateTime(1700003600)'],
    ['$__fromTime_ms', 'fromUnixTimestamp64Milli(1700000000500)'],
    ['$__interval_s', '60'],
  ];
  for (const [sql, want] of cases) assert.equal(expandPanelSql(sql, ctx), want, sql);
});

test('template variables: plain, and single-quoted lists escaped for SQL', () => {
  assert.equal(expandPanelSql('FROM ${db}.events WHERE tenant IN (${tenant:singlequote})', ctx), "FROM postline.events WHERE tenant IN ('acme','o\\'hara')");
  assert.equal(expandPanelSql('FROM $db.events', ctx), 'FROM postline.events');
});

test('unknown macros and variables fail loudly instead of reaching ClickHouse', () => {
  assert.throws(() => expandPanelSql('$__unixEpochFilter(at)', ctx), /unknown macro/);
  assert.throws(() => expandPanelSql('$__timeGroup', ctx), /unknown macro/);
  assert.throws(() => expandPanelSql('${pool}', ctx), /undefined variable/);
});
