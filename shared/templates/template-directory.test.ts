import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { loadTemplateDirectory } from './template-directory.js';
import { tempDir } from '../../test/helpers/broker.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** Writes `files` (relative path → content) into a fresh directory. */
function tree(files: Record<string, string>): string {
  const dir = tempDir('postline-templates-');
  dirs.push(dir);
  for (const [rel, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), content);
  }
  return dir;
}

describe('loadTemplateDirectory', () => {
  test('reads templates, their own partials and the shared partials', async () => {
    const dir = tree({
      'partials/footer.hbs': '<footer>{{company}}</footer>',
      'welcome/subject.hbs': 'Welcome {{name}}\n',
      'welcome/html.hbs': '<p>Hi {{name}}</p>{{> footer}}',
      'welcome/text.hbs': 'Hi {{name}}',
      'welcome/partials/sig.hbs': '-- {{company}}',
      'receipt/subject.hbs': 'Receipt',
      'receipt/text.hbs': 'Total: {{total}}',
      '.hidden/subject.hbs': 'ignored',
    });
    fs.symlinkSync(path.join(dir, 'welcome'), path.join(dir, '..data'));
    const { directory, issues } = await loadTemplateDirectory(dir);
    assert.deepEqual(issues, []);
    assert.deepEqual([...directory.templates.keys()].sort(), ['receipt', 'welcome']);
    assert.deepEqual(directory.partials, { footer: '<footer>{{company}}</footer>' });
    const welcome = directory.templates.get('welcome')!.template;
    assert.equal(welcome.subject, 'Welcome {{name}}\n');
    assert.equal(welcome.html, '<p>Hi {{name}}</p>{{> footer}}');
    assert.deepEqual(welcome.partials, { sig: '-- {{company}}' });
    const receipt = directory.templates.get('receipt')!.template;
    assert.equal(receipt.html, undefined);
    assert.equal(receipt.text, 'Total: {{total}}');
  });

  test('revisions change exactly when a template’s files or the shared partials change', async () => {
    const dir = tree({ 'partials/p.hbs': 'P', 'a/subject.hbs': 'A', 'a/text.hbs': 'a', 'b/subject.hbs': 'B', 'b/text.hbs': 'b' });
    const first = (await loadTemplateDirectory(dir)).directory;
    fs.writeFileSync(path.join(dir, 'a/text.hbs'), 'a2');
    const second = (await loadTemplateDirectory(dir)).directory;
    assert.notEqual(second.templates.get('a')!.revision, first.templates.get('a')!.revision);
    assert.equal(second.templates.get('b')!.revision, first.templates.get('b')!.revision);
    assert.equal(second.partialsRevision, first.partialsRevision);
    fs.writeFileSync(path.join(dir, 'partials/p.hbs'), 'P2');
    const third = (await loadTemplateDirectory(dir)).directory;
    assert.notEqual(third.partialsRevision, second.partialsRevision);
  });

  const bad: Array<{ name: string; files: Record<string, string>; issue: RegExp; kept: string[] }> = [
    { name: 'missing subject', files: { 'a/html.hbs': 'x', 'ok/subject.hbs': 's', 'ok/text.hbs': 't' }, issue: /^a: subject\.hbs is missing/, kept: ['ok'] },
    { name: 'no body', files: { 'a/subject.hbs': 's' }, issue: /^a: html: a template needs html, text or both/, kept: [] },
    { name: 'html does not compile', files: { 'a/subject.hbs': 's', 'a/html.hbs': '{{#if x}}' }, issue: /^a: html: does not compile/, kept: [] },
    { name: 'a file where a template directory belongs', files: { 'welcome.hbs': 'x' }, issue: /^welcome\.hbs: templates are directories/, kept: [] },
    { name: 'an invalid template name', files: { 'bad name/subject.hbs': 's', 'bad name/text.hbs': 't' }, issue: /^bad name: not a valid template name/, kept: [] },
    { name: 'a shared partial that does not compile', files: { 'partials/p.hbs': '{{/oops}}' }, issue: /^partials\/p\.hbs: does not compile/, kept: [] },
    { name: 'a partial file without .hbs', files: { 'partials/p.txt': 'x' }, issue: /^partials\/p\.txt: partial files are named/, kept: [] },
  ];
  for (const c of bad) {
    test(`reports: ${c.name}`, async () => {
      const { directory, issues } = await loadTemplateDirectory(tree(c.files));
      assert.equal(issues.length, 1, issues.join('\n'));
      assert.match(issues[0], c.issue);
      assert.deepEqual([...directory.templates.keys()], c.kept);
    });
  }

  test('every problem of a template is reported at once', async () => {
    const { issues } = await loadTemplateDirectory(tree({ 'a/html.hbs': '{{#if x}}', 'a/partials/p.hbs': '{{' }));
    assert.deepEqual(
      issues.map((i) => i.replace(/: does not compile.*/, '')),
      ['a: subject.hbs is missing', 'a: html', 'a: partials.p'],
    );
  });

  test('a missing directory is an issue', async () => {
    const { issues } = await loadTemplateDirectory('/nonexistent/postline-templates');
    assert.equal(issues.length, 1);
    assert.match(issues[0], /ENOENT/);
  });
});
