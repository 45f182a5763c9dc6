/**
 * A small expander for what Grafana and the ClickHouse data source plugin do to a panel's SQL
 * before ClickHouse sees it: template variables first (Grafana), then the plugin's macros
 * (`$__timeFilter(col)`, `$__fromTime`, `$__interval_s`, ...), expanded the way the plugin's
 * pkg/macros does. Tests use it to run every panel against the in-process engine.
 */
export interface PanelContext {
  fromMs: number;
  toMs: number;
  /** The panel's interval (Grafana derives it from the range and width). */
  intervalMs: number;
  /** Template variables; arrays are multi-value selections. */
  variables: Record<string, string | string[]>;
}

const sec = (ms: number): number => Math.floor(ms / 1000);
const day = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

function interpolateVariables(sql: string, vars: PanelContext['variables']): string {
  const value = (name: string, format?: string): string => {
    const v = vars[name];
    if (v === undefined) throw new Error(`dashboard uses undefined variable $${name}`);
    const values = Array.isArray(v) ? v : [v];
    if (format === 'singlequote') return values.map((x) => `'${x.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`).join(',');
    if (format === undefined || format === 'csv') return values.join(',');
    throw new Error(`unsupported variable format ${format}`);
  };
  return sql
    .replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([a-z]+))?\}/g, (_, name: string, format?: string) => value(name, format))
    .replace(/\$(?!__)([A-Za-z_][A-Za-z0-9_]*)/g, (_, name: string) => value(name));
}

function expandMacros(sql: string, c: PanelContext): string {
  const intervalS = Math.max(1, sec(c.intervalMs));
  const withColumn: Record<string, (col: string) => string> = {
    timeFilter: (col) => `${col} >= toDateTime(${sec(c.fromMs)}) AND ${col} <= toDateTime(${sec(c.toMs)})`,
    timeFilter_ms: (col) => `${col} >= fromUnixTimestamp64Milli(${c.fromMs}) AND ${col} <= fromUnixTimestamp64Milli(${c.toMs})`,
    dateFilter: (col) => `${col} >= toDate('${day(c.fromMs)}') AND ${col} <= toDate('${day(c.toMs)}')`,
    timeInterval: (col) => `toStartOfInterval(toDateTime(${col}), INTERVAL ${intervalS} second)`,
    timeInterval_ms: (col) => `toStartOfInterval(toDateTime64(${col}, 3), INTERVAL ${Math.max(1, c.intervalMs)} millisecond)`,
  };
  const plain: Record<string, string> = {
    fromTime_ms: `fromUnixTimestamp64Milli(${c.fromMs})`,
    toTime_ms: `fromUnixTimestamp64Milli(${c.toMs})`,
    fromTime: `toDateTime(${sec(c.fromMs)})`,
    toTime: `toDateTime(${sec(c.toMs)})`,
    interval_s: String(intervalS),
  };
  let out = sql.replace(/\$__([A-Za-z_]+)\(([^()]*)\)/g, (m, name: string, arg: string) => {
    const f = withColumn[name];
    if (!f) throw new Error(`unknown macro ${m}`);
    return f(arg.trim());
  });
  out = out.replace(/\$__([A-Za-z_]+)/g, (m, name: string) => {
    if (!(name in plain)) throw new Error(`unknown macro ${m}`);
    return plain[name];
  });
  return out;
}

export function expandPanelSql(sql: string, c: PanelContext): string {
  const out = expandMacros(interpolateVariables(sql, c.variables), c);
  if (out.includes('$')) throw new Error(`unexpanded $ left in:\n${out}`);
  return out;
}
