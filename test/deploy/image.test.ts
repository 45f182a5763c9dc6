/**
 * The Docker image, checked without a Docker engine: the Dockerfile's stages do what the
 * deployment relies on (compiled output, production dependencies, non-root, `postline` as the
 * entrypoint), and the runtime stage's file layout — dist/ from `tsc -p tsconfig.build.json`,
 * package.json, services/postline.mjs — runs the commands the manifests call, without tsx or
 * the TypeScript sources.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DockerfileParser, type Instruction } from 'dockerfile-ast';
import { loadPostlineConfig } from '../../shared/config.js';
import { AnalyticsSection } from '../../shared/config/analytics.js';
import { cliCommands } from './support/deployment-model.js';
import { REPO } from './support/repo.js';
import { STAGE_NODE_FLAGS } from '../../shared/node-flags.js';

const dockerfile = DockerfileParser.parse(fs.readFileSync(path.join(REPO, 'Dockerfile'), 'utf8'));

/** The instructions of one build stage (`FROM ... AS name`). */
function stage(name: string): Instruction[] {
  const all = dockerfile.getInstructions();
  const start = all.findIndex((i) => i.getKeyword() === 'FROM' && /\bAS\s+(\S+)/i.exec(i.getArgumentsContent() ?? '')?.[1] === name);
  assert.ok(start >= 0, `no stage ${name}`);
  const end = all.findIndex((i, n) => n > start && i.getKeyword() === 'FROM');
  return all.slice(start, end < 0 ? undefined : end);
}

const args = (i: Instruction): string => i.getArgumentsContent() ?? '';

/** The modules `postline <command>` loads, from the command table in services/cli.ts. */
function commandModules(): Record<string, string> {
  const src = fs.readFileSync(path.join(REPO, 'services', 'cli.ts'), 'utf8');
  return Object.fromEntries([...src.matchAll(/^\s+'?([a-z][\w-]*)'?: \{ describe:.*?import\('\.\/([^']+)'\)/gm)].map((m) => [m[1], m[2]]));
}

describe('Dockerfile', () => {
  it('builds the compiled output in a build stage and keeps only production dependencies', () => {
    const build = stage('build').map(args);
    assert.ok(build.some((a) => /\btsc -p tsconfig\.build\.json\b/.test(a)), 'the build stage compiles with tsconfig.build.json');
    const tsconfig = JSON.parse(fs.readFileSync(path.join(REPO, 'tsconfig.build.json'), 'utf8')) as { include: string[] };
    for (const inc of tsconfig.include) {
      const dir = inc.split('/')[0];
      assert.ok(build.some((a) => a.startsWith(`${dir} `)), `the build stage copies ${dir}/, which tsconfig.build.json compiles`);
    }
    assert.ok(stage('deps').map(args).some((a) => /npm ci --omit=dev\b/.test(a)), 'the deps stage installs production dependencies only');
  });

  it('runs postline as a non-root user from the compiled output', () => {
    const runtime = stage('runtime');
    const user = runtime.filter((i) => i.getKeyword() === 'USER').map(args).at(-1);
    assert.ok(user && !/^(root|0)(:|$)/.test(user), `runs as ${user ?? 'root'}`);
    const entry = runtime.find((i) => i.getKeyword() === 'ENTRYPOINT');
    assert.deepEqual(JSON.parse(args(entry!)), ['node', 'services/postline.mjs']);
    const copies = runtime.filter((i) => i.getKeyword() === 'COPY').map((i) => `${/--from=(\S+)/.exec(i.getTextContent())?.[1] ?? 'context'} ${args(i)}`);
    for (const want of ['build /app/dist ./dist', 'deps /app/node_modules ./node_modules', 'context package.json ./', 'context services/postline.mjs ./services/postline.mjs']) {
      assert.ok(copies.includes(want), `runtime lacks COPY ${want} (has: ${copies.join('; ')})`);
    }
  });

  it('runs every stage with the node flags postline start uses', () => {
    const env = stage('runtime')
      .filter((i) => i.getKeyword() === 'ENV')
      .map(args)
      .find((a) => a.startsWith('NODE_OPTIONS='));
    assert.ok(env, 'the runtime stage sets NODE_OPTIONS');
    assert.deepEqual(JSON.parse(env.slice('NODE_OPTIONS='.length)).split(' '), [...STAGE_NODE_FLAGS]);
  });

  it('is based on a Node LTS line and exposes the ports the stages serve', () => {
    const version = dockerfile.getARGs().find((a) => a.getProperty()?.getName() === 'NODE_VERSION')?.getProperty()?.getValue();
    assert.ok(Number(version) >= 22 && Number(version) % 2 === 0, `Node ${version} is not a supported LTS line`);
    const exposed = stage('runtime')
      .filter((i) => i.getKeyword() === 'EXPOSE')
      .flatMap((i) => args(i).split(/\s+/))
      .map(Number);
    const c = loadPostlineConfig({ env: {} });
    const analyticsPort = (AnalyticsSection.properties.port as { default: number }).default;
    for (const p of [c.ingest.port, c.ops.port, analyticsPort, c.inbound.port]) assert.ok(exposed.includes(p), `port ${p} is not exposed`);
  });

  it('keeps the build context small: .dockerignore leaves out local state', () => {
    const ignored = fs.readFileSync(path.join(REPO, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim());
    for (const p of ['**/node_modules', 'dist', 'data', '.git', 'test', '**/.env']) assert.ok(ignored.includes(p), `.dockerignore lacks ${p}`);
  });
});

describe('the image’s file layout', () => {
  let root: string;
  before(() => {
    // What the runtime stage holds: dist/ (as the build stage compiles it), package.json and
    // services/postline.mjs; the repository's node_modules stands in for the deps stage.
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'postline-image-'));
    execFileSync(process.execPath, [path.join(REPO, 'node_modules/typescript/bin/tsc'), '-p', path.join(REPO, 'tsconfig.build.json'), '--outDir', path.join(root, 'dist'), '--noCheck', '--sourceMap', 'false'], {
      cwd: REPO,
      stdio: 'pipe',
    });
    fs.copyFileSync(path.join(REPO, 'package.json'), path.join(root, 'package.json'));
    fs.mkdirSync(path.join(root, 'services'));
    fs.copyFileSync(path.join(REPO, 'services/postline.mjs'), path.join(root, 'services/postline.mjs'));
    fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(root, 'node_modules'), 'dir');
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  it('postline runs the compiled cli (no TypeScript sources in the image)', () => {
    assert.ok(!fs.existsSync(path.join(root, 'services/cli.ts')));
    const out = execFileSync(process.execPath, ['services/postline.mjs', 'config', 'env'], { cwd: root, encoding: 'utf8', env: { PATH: process.env.PATH } });
    assert.match(out, /^POSTLINE_KAFKA_BROKERS=/m);
  });

  it('every command’s module is compiled and loads', () => {
    const modules = commandModules();
    assert.deepEqual(Object.keys(modules).sort(), [...cliCommands()].sort(), 'every command of cli.ts is found');
    const script = Object.values(modules)
      .map((m) => `await import(${JSON.stringify(`./dist/services/${m}`)});`)
      .join('\n');
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8', env: { PATH: process.env.PATH }, timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
  });

  it('needs only production dependencies at run time, and the embedded ClickHouse engine only when used', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    const walk = (dir: string): string[] =>
      fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? walk(path.join(dir, d.name)) : d.name.endsWith('.js') ? [path.join(dir, d.name)] : []));
    const missing = new Set<string>();
    let chdbStatic = false;
    for (const file of walk(path.join(root, 'dist'))) {
      const src = fs.readFileSync(file, 'utf8');
      for (const m of src.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)) {
        const spec = m[1] ?? m[2];
        if (spec.startsWith('.') || spec.startsWith('node:')) continue;
        const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0];
        if (name === 'chdb' && m[1]) chdbStatic = true;
        if (!(name in pkg.dependencies)) missing.add(`${name} (${path.relative(root, file)})`);
      }
    }
    assert.deepEqual([...missing], [], 'imported at run time but not a production dependency');
    assert.equal(chdbStatic, false, 'chdb must be imported lazily: the image leaves it out');
  });
});
