/**
 * Generated deployment files are up to date with their single source: the ConfigMap with the
 * config schema's defaults, the Strimzi topics with shared/topics.ts, the PrometheusRule with the
 * alert rules file, the dashboard and data-source ConfigMaps with the analytics Grafana files.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { GENERATED } from './support/generated-files.js';
import { REPO } from './support/repo.js';

describe('generated deployment files', () => {
  for (const [file, gen] of Object.entries(GENERATED)) {
    it(`${file} is up to date (regenerate: ${gen.how})`, () => {
      const target = path.join(REPO, file);
      assert.ok(fs.existsSync(target), `${file} is missing`);
      assert.equal(fs.readFileSync(target, 'utf8'), gen.content(), `${file} is stale; regenerate it with: ${gen.how}`);
    });
  }

  it('the ConfigMap holds every non-secret option of the schema and nothing else', () => {
    const cm = parse(fs.readFileSync(path.join(REPO, 'k8s/base/postline-config.yaml'), 'utf8')) as { data: Record<string, string> };
    assert.equal(cm.data.POSTLINE_OPS_PORT, '9464');
    assert.equal(cm.data.POSTLINE_INGEST_PORT, '8080');
    assert.ok(!Object.keys(cm.data).some((k) => /PASSWORD|API_KEYS/.test(k)), 'secrets stay out of the ConfigMap');
  });
});
