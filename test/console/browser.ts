/**
 * The console's browser tests' tools: Debian's chromium driven by playwright-core (no browser
 * download), axe-core run in every page, screenshots at the two sizes the console is made for.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { chromium, type Browser, type Page } from 'playwright-core';

const require = createRequire(import.meta.url);
const AXE_SOURCE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

export const SIZES = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } } as const;
export type SizeName = keyof typeof SIZES;

/** The chromium on PATH (apt's), or CHROMIUM_PATH. */
export function chromiumPath(): string | undefined {
  if (process.env.CHROMIUM_PATH) return process.env.CHROMIUM_PATH;
  for (const name of ['chromium', 'chromium-browser']) {
    try {
      return execFileSync('which', [name], { encoding: 'utf8' }).trim() || undefined;
    } catch {
      // not this one
    }
  }
  return undefined;
}

export async function launchBrowser(): Promise<Browser> {
  const executablePath = chromiumPath();
  if (!executablePath) throw new Error('chromium is not installed (apt-get install chromium; .ci/run installs it)');
  // --no-sandbox: CI runs as root, where chromium's sandbox cannot start.
  return chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
}

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: Array<{ target: unknown[] }>;
}

/** axe-core's serious and critical violations on the page as it is now. */
export async function seriousViolations(page: Page): Promise<AxeViolation[]> {
  // Evaluated through the DevTools protocol, which the page's CSP (no inline script) does not govern.
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(AXE_SOURCE);
  const result = (await page.evaluate(() => (window as unknown as { axe: { run(o: unknown): Promise<{ violations: AxeViolation[] }> } }).axe.run({ resultTypes: ['violations'] }))) as { violations: AxeViolation[] };
  return result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

/** Where screenshots go: the test output directory, and `POSTLINE_CONSOLE_SCREENSHOTS` (e.g. docs/console) too when set. */
export function screenshotDirs(): string[] {
  const out = path.join(process.env.POSTLINE_TEST_OUTPUT ?? path.join(os.tmpdir(), 'postline-test-output'), 'console');
  fs.mkdirSync(out, { recursive: true });
  const extra = process.env.POSTLINE_CONSOLE_SCREENSHOTS;
  if (extra) fs.mkdirSync(extra, { recursive: true });
  return extra ? [out, extra] : [out];
}

export async function screenshot(page: Page, name: string, size: SizeName, dirs: string[]): Promise<void> {
  const file = `${name}-${SIZES[size].width}x${SIZES[size].height}.png`;
  const shot = await page.screenshot({ fullPage: false });
  for (const d of dirs) fs.writeFileSync(path.join(d, file), shot);
}
