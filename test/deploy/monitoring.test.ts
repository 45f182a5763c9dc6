/**
 * The alert rules and the pipeline-health dashboard are well-formed: every PromQL expression
 * parses (the Prometheus project's own grammar), every alert has a severity, a duration and
 * texts, the stage-down alerts name every stage by the job the scrapers give it, and the
 * dashboard's panels are laid out and bound to its Prometheus data source variable.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { parser } from '@prometheus-io/lezer-promql';
import { parse } from 'yaml';
import { stages } from './support/deployment-model.js';
import { REPO } from './support/repo.js';

const MONITORING = path.join(REPO, 'k8s/components/monitoring');

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** Syntax errors in a PromQL expression (Grafana's `$__rate_interval` stands for a range). */
function promqlErrors(expr: string): string[] {
  const q = expr.replace(/\$__rate_interval/g, '5m');
  const errors: string[] = [];
  parser.parse(q).iterate({
    enter: (n) => {
      if (n.type.isError) errors.push(`at ${n.from}: …${q.slice(Math.max(0, n.from - 20), n.from + 20)}…`);
    },
  });
  return errors;
}

const rules = (): Rule[] => (parse(fs.readFileSync(path.join(MONITORING, 'postline-alerts.rules.yml'), 'utf8')) as { groups: Array<{ rules: Rule[] }> }).groups.flatMap((g) => g.rules);

describe('alert rules', () => {
  it('parse as PromQL (and the parser does reject broken PromQL)', () => {
    assert.ok(promqlErrors('sum(rate(postline_x_total[5m])').length > 0);
    for (const r of rules()) assert.deepEqual(promqlErrors(r.expr), [], `${r.alert}: ${r.expr}`);
  });

  it('each have a unique name, a severity, a duration and a summary and description', () => {
    const names = rules().map((r) => r.alert);
    assert.equal(new Set(names).size, names.length);
    for (const r of rules()) {
      assert.match(r.alert, /^Postline[A-Z]\w+$/);
      assert.ok(['warning', 'critical'].includes(r.labels?.severity ?? ''), `${r.alert}: severity`);
      if (r.for) assert.match(r.for, /^\d+[smh]$/, `${r.alert}: for`);
      assert.ok(r.annotations?.summary && r.annotations.description, `${r.alert}: summary and description`);
      for (const text of Object.values(r.annotations ?? {})) assert.equal(text.split('{{').length, text.split('}}').length, `${r.alert}: template braces`);
    }
  });

  it('cover what the issue asks: lag growing, breaker open, dead letters, bounce rate, a stage down', () => {
    const byName = new Map(rules().map((r) => [r.alert, r]));
    for (const a of ['PostlineConsumerLagGrowing', 'PostlineSmtpBreakerOpen', 'PostlineDeadLetters', 'PostlineBounceRateHigh', 'PostlineStageDown', 'PostlineStageMissing']) assert.ok(byName.has(a), a);
    assert.match(byName.get('PostlineConsumerLagGrowing')!.expr, /postline_consumer_lag/);
    assert.match(byName.get('PostlineSmtpBreakerOpen')!.expr, /postline_smtp_breaker_state/);
    assert.match(byName.get('PostlineDeadLetters')!.expr, /postline_dead_letters_total/);
    assert.match(byName.get('PostlineBounceRateHigh')!.expr, /outcome="bounced"/);
  });

  it('name every stage by the job its scrapers give it (k8s Service name, compose job name)', () => {
    const byName = new Map(rules().map((r) => [r.alert, r]));
    const down = /job=~"([^"]+)"/.exec(byName.get('PostlineStageDown')!.expr)![1];
    for (const s of stages()) {
      assert.match(`postline-${s}`, new RegExp(`^${down}$`));
      assert.ok(byName.get('PostlineStageMissing')!.expr.includes(`absent(up{job="postline-${s}"})`), `PostlineStageMissing covers ${s}`);
    }
  });
});

describe('pipeline-health dashboard', () => {
  const dashboard = JSON.parse(fs.readFileSync(path.join(MONITORING, 'dashboards/postline-pipeline-health.json'), 'utf8')) as {
    uid: string;
    templating: { list: Array<{ name: string; type: string; query: string }> };
    panels: Array<{ id: number; type: string; title: string; gridPos: { x: number; y: number; w: number; h: number }; datasource?: { uid: string }; targets?: Array<{ expr: string }> }>;
  };

  it('queries parse as PromQL and use the dashboard’s Prometheus data source variable', () => {
    const ds = dashboard.templating.list.find((v) => v.type === 'datasource');
    assert.equal(ds?.query, 'prometheus');
    for (const p of dashboard.panels.filter((x) => x.type !== 'row')) {
      assert.equal(p.datasource?.uid, `\${${ds!.name}}`, `${p.title}: data source`);
      assert.ok((p.targets ?? []).length > 0, `${p.title}: has queries`);
      for (const t of p.targets ?? []) assert.deepEqual(promqlErrors(t.expr), [], `${p.title}: ${t.expr}`);
    }
  });

  it('has unique panel ids and no overlapping panels on the 24-column grid', () => {
    const ids = dashboard.panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length);
    const cells = new Set<string>();
    for (const p of dashboard.panels) {
      assert.ok(p.gridPos.x + p.gridPos.w <= 24, `${p.title} overflows the grid`);
      for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++) {
        for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
          assert.ok(!cells.has(`${x},${y}`), `${p.title} overlaps another panel`);
          cells.add(`${x},${y}`);
        }
      }
    }
  });

  it('covers lag, throughput per stage, SMTP latency per host, breakers, fleets, retries and errors', () => {
    const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)).join('\n');
    for (const m of [
      'postline_consumer_lag',
      'postline_stage_records_processed_total',
      'postline_smtp_transaction_seconds_bucket',
      'postline_smtp_breaker_state',
      'postline_smtp_fleet_connections',
      'postline_smtp_fleet_busy_connections',
      'postline_retry_records_moved_total',
      'postline_dead_letters_total',
      'postline_stage_records_failed_total',
    ]) {
      assert.ok(exprs.includes(m), `no panel shows ${m}`);
    }
  });
});
