import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { compileTemplate, templateIssues, TemplateRenderError, type RenderedTemplate, type TemplateSource } from './template-compiler.js';
import { formatDate } from './template-helpers.js';

interface RenderCase {
  name: string;
  template: Omit<TemplateSource, 'name'>;
  shared?: Record<string, string>;
  data: Record<string, unknown>;
  expect: Partial<RenderedTemplate>;
}

const renders: RenderCase[] = [
  {
    name: 'html escapes {{ }}, subject and text do not',
    template: { subject: 'Re: {{title}}', html: '<p>{{title}}</p>', text: '{{title}}' },
    data: { title: 'Tom & Jerry <3 "quotes"' },
    expect: { subject: 'Re: Tom & Jerry <3 "quotes"', html: '<p>Tom &amp; Jerry &lt;3 &quot;quotes&quot;</p>', text: 'Tom & Jerry <3 "quotes"' },
  },
  {
    name: 'triple-stash is the explicit opt-out of escaping in html',
    template: { subject: 's', html: '<div>{{{snippet}}}</div>' },
    data: { snippet: '<b>bold</b>' },
    expect: { html: '<div><b>bold</b></div>' },
  },
  {
    name: 'a partial escapes in html and not in text',
    template: { subject: 's', html: '<p>{{> greet}}</p>', text: '{{> greet}}', partials: { greet: 'Hi {{name}}!' } },
    data: { name: 'A&B' },
    expect: { html: '<p>Hi A&amp;B!</p>', text: 'Hi A&B!' },
  },
  {
    name: 'shared partials are visible, the template’s own override them',
    template: { subject: 's', html: '{{> header}}|{{> footer}}', partials: { footer: 'own footer' } },
    shared: { header: 'shared header', footer: 'shared footer' },
    data: {},
    expect: { html: 'shared header|own footer' },
  },
  {
    name: 'partial blocks and partial parameters',
    template: { subject: 's', html: '{{#> layout title="T"}}body {{x}}{{/layout}}', partials: { layout: '<h1>{{title}}</h1>{{> @partial-block}}' } },
    data: { x: 1 },
    expect: { html: '<h1>T</h1>body 1' },
  },
  {
    name: 'subject line breaks from data are folded (no header injection)',
    template: { subject: '{{s}}', text: 'x' },
    data: { s: 'Hello\r\nBcc: victim@example.org\n' },
    expect: { subject: 'Hello Bcc: victim@example.org', text: 'x' },
  },
  {
    name: 'eq / ne in subexpressions',
    template: { subject: '{{#if (eq plan "pro")}}Pro{{else}}Free{{/if}} {{#if (ne n 1)}}many{{/if}}', text: 'x' },
    data: { plan: 'pro', n: 2 },
    expect: { subject: 'Pro many' },
  },
  {
    name: 'uppercase / lowercase',
    template: { subject: '{{uppercase code}} {{lowercase name}}', text: 'x' },
    data: { code: 'ab12', name: 'MiXeD' },
    expect: { subject: 'AB12 mixed' },
  },
  {
    name: 'default covers missing, null and empty values (helper args are lenient in strict mode)',
    template: { subject: 'Hi {{default name "there"}}, {{default nick "friend"}}, {{default empty "x"}}, {{default given "y"}}', text: 'x' },
    data: { nick: null, empty: '', given: 'G' },
    expect: { subject: 'Hi there, friend, x, G' },
  },
  {
    name: 'formatDate with defaults (en-US, UTC, medium) and with options',
    template: { subject: '{{formatDate at}} / {{formatDate at dateStyle="long" timeStyle="short" locale="en-GB" timeZone="Europe/Paris"}}', text: 'x' },
    data: { at: '2026-03-01T23:30:00Z' },
    expect: { subject: 'Mar 1, 2026 / 2 March 2026 at 00:30' },
  },
  {
    name: 'if on a missing field is false, each over a list',
    template: { subject: 's', text: '{{#if vip}}VIP{{/if}}{{#each items}}[{{this.n}}]{{/each}}' },
    data: { items: [{ n: 1 }, { n: 2 }] },
    expect: { text: '[1][2]' },
  },
];

interface ErrorCase {
  name: string;
  template: Omit<TemplateSource, 'name'>;
  data: Record<string, unknown>;
  part: 'subject' | 'html' | 'text';
  message: RegExp;
}

const errors: ErrorCase[] = [
  { name: 'missing variable in the html (strict mode)', template: { subject: 's', html: 'Hi {{name}}' }, data: {}, part: 'html', message: /"name" not defined/ },
  { name: 'missing nested object', template: { subject: '{{user.name}}', text: 'x' }, data: {}, part: 'subject', message: /"name" not defined/ },
  { name: 'helper throws on bad data', template: { subject: 's', text: '{{formatDate at}}' }, data: { at: 'not a date' }, part: 'text', message: /formatDate: not a date/ },
  { name: 'unknown time zone', template: { subject: 's', text: '{{formatDate at timeZone="Mars/Olympus"}}' }, data: { at: 0 }, part: 'text', message: /time zone/i },
  { name: 'missing partial', template: { subject: 's', html: '{{> nowhere}}' }, data: {}, part: 'html', message: /partial nowhere could not be found/ },
  { name: 'unknown helper', template: { subject: 's', html: '{{shout name}}' }, data: { name: 'x' }, part: 'html', message: /Missing helper: "shout"|shout/ },
];

describe('compileTemplate: rendering', () => {
  for (const c of renders) {
    test(c.name, () => {
      const out = compileTemplate({ name: 't', ...c.template }, c.shared ?? {}, 'r1').render(c.data);
      for (const [k, v] of Object.entries(c.expect)) assert.equal(out[k as keyof RenderedTemplate], v, k);
    });
  }

  test('a part the template lacks is absent from the result', () => {
    const out = compileTemplate({ name: 't', subject: 's', html: '<p>x</p>' }, {}, 'r').render({});
    assert.deepEqual(out, { subject: 's', html: '<p>x</p>' });
  });
});

describe('compileTemplate: data errors are permanent and name the part', () => {
  for (const c of errors) {
    test(c.name, () => {
      const tpl = compileTemplate({ name: 'welcome', ...c.template }, {}, 'r');
      assert.throws(
        () => tpl.render(c.data),
        (err: unknown) => {
          assert.ok(err instanceof TemplateRenderError);
          assert.equal(err.code, 'TEMPLATE_RENDER_FAILED');
          assert.equal(err.retriable, false);
          assert.equal(err.part, c.part);
          assert.match(err.message, /^template "welcome" /);
          assert.match(err.message, c.message);
          return true;
        },
      );
    });
  }
});

describe('compileTemplate: isolation', () => {
  test('two templates with a partial of the same name each see their own', () => {
    const a = compileTemplate({ name: 'a', subject: 's', html: '{{> footer}}', partials: { footer: 'A' } }, {}, 'r');
    const b = compileTemplate({ name: 'b', subject: 's', html: '{{> footer}}', partials: { footer: 'B' } }, {}, 'r');
    assert.equal(a.render({}).html, 'A');
    assert.equal(b.render({}).html, 'B');
    // A template without the partial does not find another template's.
    const c = compileTemplate({ name: 'c', subject: 's', html: '{{> footer}}' }, {}, 'r');
    assert.throws(() => c.render({}), /partial footer could not be found/);
  });

  test('the log helper renders nothing and writes nothing to the console', (t) => {
    const calls: unknown[] = [];
    for (const m of ['log', 'info', 'warn', 'error', 'debug'] as const) t.mock.method(console, m, (...args: unknown[]) => calls.push(args));
    const out = compileTemplate({ name: 't', subject: 's', text: 'a{{log "secret" level="error"}}b' }, {}, 'r').render({});
    assert.equal(out.text, 'ab');
    assert.deepEqual(calls, []);
  });

  test('prototype properties of the data are not reachable', () => {
    assert.throws(
      () => compileTemplate({ name: 't', subject: 's', text: '[{{#with this}}{{constructor.name}}{{/with}}]' }, {}, 'r'),
      (err: Error & { code?: string }) => err.code === 'TEMPLATE_INVALID' && /missing variable/.test(err.message),
    );
  });
});

describe('compileTemplate: names every object inherits are a template error, and nothing is printed', () => {
  function silently(t: { mock: { method: (o: object, m: string, impl: (...a: unknown[]) => unknown) => unknown } }): unknown[] {
    const calls: unknown[] = [];
    for (const m of ['log', 'info', 'warn', 'error', 'debug'] as const) t.mock.method(console, m, (...args: unknown[]) => calls.push(args));
    for (const stream of [process.stdout, process.stderr]) t.mock.method(stream, 'write', (...args: unknown[]) => calls.push(args) > 0);
    return calls;
  }
  const cases: Array<[string, Omit<TemplateSource, 'name'>, string]> = [
    ['{{constructor}}', { subject: 's', text: 'a{{constructor}}b' }, 'text'],
    ['{{toString}}', { subject: 'x {{toString}}', text: 't' }, 'subject'],
    ['{{hasOwnProperty}}', { subject: 's', html: '<p>{{hasOwnProperty}}</p>' }, 'html'],
    ['a nested {{user.valueOf}}', { subject: 's', text: '{{user.valueOf}}' }, 'text'],
    ['inside #each', { subject: 's', text: '{{#each items}}{{__proto__}}{{/each}}' }, 'text'],
    ['in a partial', { subject: 's', text: '{{> p}}', partials: { p: '{{isPrototypeOf}}' } }, 'partials.p'],
  ];
  for (const [name, source, part] of cases) {
    test(name, (t) => {
      const calls = silently(t);
      const issues = templateIssues(source);
      assert.deepEqual(issues.map((i) => i.path), [part]);
      assert.match(issues[0].message, /missing variable/);
      assert.throws(() => compileTemplate({ name: 'x', ...source }, {}, 'r'), (err: Error & { code?: string }) => err.code === 'TEMPLATE_INVALID');
      t.mock.restoreAll();
      assert.deepEqual(calls, []);
    });
  }

  test('a name chosen at render time (lookup) renders nothing and prints nothing', (t) => {
    const tpl = compileTemplate({ name: 'x', subject: 's', text: '[{{lookup this "constructor"}}{{lookup this "toString"}}]' }, {}, 'r');
    const calls = silently(t);
    const out = tpl.render({ a: 1 });
    t.mock.restoreAll();
    assert.equal(out.text, '[]');
    assert.deepEqual(calls, []);
  });

  test('own data of the same shape still renders (length of a list, a key named "name")', () => {
    assert.equal(compileTemplate({ name: 'x', subject: 's', text: '{{items.length}} {{user.name}}' }, {}, 'r').render({ items: [1, 2], user: { name: 'Ann' } }).text, '2 Ann');
  });
});

describe('templateIssues', () => {
  const cases: Array<{ name: string; source: Omit<TemplateSource, 'name'>; paths: string[] }> = [
    { name: 'a valid template', source: { subject: 'Hi {{a}}', html: '<p>{{b}}</p>', text: '{{c}}', partials: { p: '{{d}}' } }, paths: [] },
    { name: 'no body', source: { subject: 's' }, paths: ['html'] },
    { name: 'unclosed block in html', source: { subject: 's', html: '{{#if a}}x' }, paths: ['html'] },
    { name: 'bad subject and bad partial', source: { subject: '{{', text: 'ok', partials: { footer: '{{/x}}' } }, paths: ['subject', 'partials.footer'] },
    { name: 'bad text', source: { subject: 's', text: '{{#each}}{{/each}' }, paths: ['text'] },
  ];
  for (const c of cases) {
    test(c.name, () => {
      assert.deepEqual(
        templateIssues(c.source).map((i) => i.path),
        c.paths,
      );
    });
  }

  test('compileTemplate refuses a template that does not compile', () => {
    assert.throws(() => compileTemplate({ name: 'x', subject: 's', html: '{{#if}}' }, {}, 'r'), (err: Error & { code?: string }) => err.code === 'TEMPLATE_INVALID');
  });
});

describe('formatDate', () => {
  const cases: Array<[unknown, Record<string, unknown>, string]> = [
    ['2026-01-02T03:04:05Z', {}, 'Jan 2, 2026'],
    [Date.UTC(2026, 0, 2), { dateStyle: 'short' }, '1/2/26'],
    [new Date('2026-01-02T03:04:05Z'), { timeStyle: 'short' }, '3:04 AM'],
    ['2026-01-02T03:04:05Z', { locale: 'de-DE', dateStyle: 'long' }, '2. Januar 2026'],
  ];
  for (const [value, hash, expected] of cases) {
    test(`${JSON.stringify(value)} ${JSON.stringify(hash)} → ${expected}`, () => assert.equal(formatDate(value, hash), expected));
  }
  test('rejects an unknown style', () => assert.throws(() => formatDate(0, { dateStyle: 'huge' }), /dateStyle/));
});
