import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { ConfigError } from '../../../shared/config-loader.js';
import { DEFAULT_RULES_FILE, domainWindows, loadShapingRules, siteRule } from './shaping-rules.js';

const withUser = (text: string) => loadShapingRules('/etc/postline/shaping.yaml', (p) => (p === DEFAULT_RULES_FILE ? fs.readFileSync(p, 'utf8') : text));

describe('shaping rules', () => {
  it('ship defaults for gmail, outlook, yahoo, icloud and default', () => {
    const rules = loadShapingRules('');
    for (const s of ['gmail', 'outlook', 'yahoo', 'icloud', 'default']) assert.ok(rules.sites[s], s);
    assert.deepEqual(siteRule(rules, 'gmail'), { maxConnections: 5, messagesPerConnection: 50, windows: [{ limit: 20, ms: 1000 }] });
    assert.deepEqual(siteRule(rules, 'icloud').messagesPerConnection, 5);
    // A site without a rule of its own takes default's.
    assert.deepEqual(siteRule(rules, 'example.net'), { maxConnections: 10, messagesPerConnection: 100, windows: [{ limit: 100, ms: 1000 }] });
  });

  it('lets a user file override key by key, add sites and domains, and remove a window with null', () => {
    const rules = withUser(`
sites:
  gmail: { perSecond: 50, perHour: null }
  Example.NET: { maxConnections: 2, perMinute: 600 }
domains:
  tiny.example: { perMinute: 6 }
`);
    assert.deepEqual(siteRule(rules, 'gmail'), { maxConnections: 5, messagesPerConnection: 50, windows: [{ limit: 50, ms: 1000 }] });
    assert.deepEqual(siteRule(rules, 'example.net'), { maxConnections: 2, messagesPerConnection: 100, windows: [{ limit: 100, ms: 1000 }, { limit: 600, ms: 60_000 }] });
    assert.deepEqual(domainWindows(rules, 'TINY.example'), [{ limit: 6, ms: 60_000 }]);
    assert.equal(domainWindows(rules, 'other.example'), undefined);
  });

  it('names every bad key of the user file at once', () => {
    assert.throws(
      () =>
        withUser(`
sites:
  gmail: { perSecond: -1, maxConections: 3 }
  yahoo: { messagesPerConnection: 2.5 }
domains:
  tiny.example: { maxConnections: 1 }
extra: true
`),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        const text = err.problems.join('\n');
        assert.match(text, /sites\.gmail\.perSecond: expected a number above 0, or null/);
        for (const key of ['sites.gmail.perSecond', 'sites.gmail.maxConections', 'sites.yahoo.messagesPerConnection', 'domains.tiny.example.maxConnections', 'extra']) assert.match(text, new RegExp(key.replace(/\./g, '\\.')), key);
        assert.ok(err.problems.every((p) => p.startsWith('/etc/postline/shaping.yaml: ')));
        return true;
      },
    );
  });

  it('says so when the file cannot be read or parsed', () => {
    assert.throws(() => loadShapingRules('/nonexistent/shaping.yaml'), /dispatcher\.shapingFile \(\/nonexistent\/shaping\.yaml\)/);
    assert.throws(() => withUser('sites: [unclosed'), /not valid YAML/);
  });
});
