/**
 * Every relative link in every Markdown file of the repository resolves: the file (or folder)
 * exists inside the repository, and an `#anchor` names a heading of the target file the way
 * GitHub slugs it. Links inside code blocks and inline code are not links.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import GithubSlugger from 'github-slugger';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

function markdownFiles(): string[] {
  const listed = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '*.md'], { cwd: ROOT, encoding: 'utf8' });
  return listed.split('\n').filter((f) => f && fs.existsSync(path.join(ROOT, f)));
}

/** The Markdown text with fenced code blocks and inline code removed (line numbers kept). */
function withoutCode(text: string): string {
  return text
    .replace(/^(```|~~~)[\s\S]*?^\1/gm, (block) => block.replace(/[^\n]/g, ''))
    .replace(/`[^`\n]*`/g, '');
}

function links(text: string): Array<{ target: string; line: number }> {
  const out: Array<{ target: string; line: number }> = [];
  withoutCode(text)
    .split('\n')
    .forEach((line, i) => {
      for (const m of line.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) out.push({ target: m[1], line: i + 1 });
    });
  return out;
}

function anchors(file: string): Set<string> {
  const slugger = new GithubSlugger();
  const headings = withoutCode(fs.readFileSync(file, 'utf8'))
    .split('\n')
    .map((l) => /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(l)?.[1])
    .filter((h): h is string => h !== undefined);
  // GitHub slugs the rendered text: inline code keeps its content, links keep their text.
  return new Set(headings.map((h) => slugger.slug(h.replace(/`/g, '').replace(/\[([^\]]*)\]\([^)]*\)/g, '$1'))));
}

/** Problems with one link, or null when it resolves. */
export function checkLink(fromFile: string, target: string): string | null {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) return null; // http:, https:, mailto:
  const [pathPart, anchor] = target.split('#', 2);
  const resolved = pathPart ? path.resolve(path.dirname(fromFile), decodeURIComponent(pathPart)) : fromFile;
  if (resolved !== ROOT && !resolved.startsWith(ROOT + path.sep)) return `points outside the repository (${resolved})`;
  if (!fs.existsSync(resolved)) return `no such file: ${path.relative(ROOT, resolved)}`;
  if (anchor !== undefined && resolved.endsWith('.md') && !anchors(resolved).has(anchor)) {
    return `no heading #${anchor} in ${path.relative(ROOT, resolved)}`;
  }
  return null;
}

test('every relative link in every Markdown file resolves inside the repository', () => {
  const files = markdownFiles();
  assert.ok(files.includes('README.md'), 'README.md is checked');
  const broken: string[] = [];
  let checked = 0;
  for (const file of files) {
    const abs = path.join(ROOT, file);
    for (const { target, line } of links(fs.readFileSync(abs, 'utf8'))) {
      checked++;
      const problem = checkLink(abs, target);
      if (problem) broken.push(`${file}:${line} (${target}): ${problem}`);
    }
  }
  assert.ok(checked >= 10, `found ${checked} links; the link scanner is broken`);
  assert.deepEqual(broken, []);
});

test('the link checker catches what it must', () => {
  const readme = path.join(ROOT, 'README.md');
  assert.equal(checkLink(readme, 'shared/topics.ts'), null);
  assert.equal(checkLink(readme, '#quick-start'), null);
  assert.match(checkLink(readme, 'base/postline-config.yaml') ?? '', /no such file/);
  assert.match(checkLink(readme, '../shared/DESIGN.md') ?? '', /outside the repository/);
  assert.match(checkLink(readme, '#no-such-heading') ?? '', /no heading/);
  assert.equal(checkLink(readme, 'https://example.com/x'), null);
});
