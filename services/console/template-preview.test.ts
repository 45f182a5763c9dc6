/**
 * The template preview runs the renderer's own code: it renders what the renderer would (strict
 * mode, its helpers, escaping), and places errors at the part and line Handlebars reports —
 * for a parse error, a block closed wrongly and a missing variable alike.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { errorLine, previewTemplate, sampleData } from './template-preview.js';

test('renders subject, html (escaped) and text with the data', () => {
  const p = previewTemplate({ subject: 'Hi {{name}}', html: '<p>{{name}}</p>', text: 'Hi {{default nick "there"}}' }, { name: '<Ada>' });
  assert.ok(p.ok);
  assert.deepEqual(p.rendered, { subject: 'Hi <Ada>', html: '<p>&lt;Ada&gt;</p>', text: 'Hi there' });
});

test('a parse error is placed at its part and line, with the lines around it', () => {
  const p = previewTemplate({ subject: 'Hi', html: '<p>one</p>\n<p>two</p>\n{{#if x}}\n<p>four</p>' }, {});
  assert.ok(!p.ok);
  assert.equal(p.errors[0].part, 'html');
  assert.equal(p.errors[0].line, 4, 'Handlebars reports an unclosed block where the input ends');
  assert.deepEqual(p.errors[0].excerpt?.find((l) => l.failing)?.n, 4);
});

test('a block closed with the wrong name, and a missing variable, at their lines', () => {
  const closed = previewTemplate({ subject: 'Hi', text: 'a\n{{#if x}}b{{/each}}' }, {});
  assert.ok(!closed.ok);
  assert.deepEqual([closed.errors[0].part, closed.errors[0].line], ['text', 2]);
  const missing = previewTemplate({ subject: 'Hi', html: '<p>a</p>\n\n<p>{{name}}</p>' }, {});
  assert.ok(!missing.ok);
  assert.deepEqual([missing.errors[0].part, missing.errors[0].line], ['html', 3]);
  assert.match(missing.errors[0].message, /"name" not defined/);
});

test('sample data names every simple variable outside blocks', () => {
  assert.deepEqual(sampleData({ subject: 'Hi {{user.first}}', html: '{{name}} {{#each items}}{{title}}{{/each}} {{formatDate when}}' }), { user: { first: 'user.first' }, name: 'name' });
  assert.equal(errorLine('Parse error on line 7:\n...'), 7);
  assert.equal(errorLine('"x" not defined in [object Object] - 3:4'), 3);
  assert.equal(errorLine('something else'), undefined);
});
