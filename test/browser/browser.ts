/**
 * What the browser tests share: Debian's Chromium launched headless through playwright-core
 * (the flags CI uses), axe-core run inside the page, the artefacts folder for screenshots,
 * and the skip-or-fail rule when no Chromium is installed.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { REPO_ROOT } from '../server/helpers.js';

export const CHROMIUM = process.env.ALLOY_CHROMIUM ?? '/usr/bin/chromium';
export const HAVE_BROWSER = existsSync(CHROMIUM);
export const IN_CI = process.env.CI === 'true' || process.env.CI === '1';
export const ARTEFACTS = path.join(REPO_ROOT, 'test-results', 'web-ui');

export function noBrowserNote(): void {
  if (!HAVE_BROWSER && !IN_CI) {
    console.log(`browser tests skipped: no Chromium at ${CHROMIUM}; install it (sudo apt-get install chromium) or set ALLOY_CHROMIUM=<path>, then run npx vitest run test/browser`);
  }
}

export const CI_MISSING_BROWSER = `CI=true and no Chromium at ${CHROMIUM}: .ci/run installs the chromium package (apt-get install -y chromium)`;

export interface LaunchedBrowser {
  context: BrowserContext;
  page: Page;
  /** Content-Security-Policy violations the page reported. */
  cspErrors: string[];
  close(): Promise<void>;
}

export async function launchChromium(): Promise<LaunchedBrowser> {
  const { chromium } = await import('playwright-core');
  const userDataDir = mkdtempSync(path.join(os.tmpdir(), 'alloy-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 900 },
    timeout: 60_000,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const cspErrors: string[] = [];
  page.on('console', (m) => {
    if (/Content.Security.Policy/i.test(m.text())) cspErrors.push(m.text());
  });
  return {
    context,
    page,
    cspErrors,
    close: async () => {
      await context.close().catch(() => {});
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** axe-core, injected as source (the page's CSP allows no inline script; DevTools evaluation is exempt). */
export async function checkAccessibility(page: Page, what: string): Promise<void> {
  await page.evaluate(axeSource);
  const result = (await page.evaluate(() => (globalThis as any).axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'best-practice'] } }))) as {
    violations: { id: string; help: string; nodes: { target: string[] }[] }[];
  };
  const problems = result.violations.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`);
  expect(problems, `accessibility problems on ${what}`).toEqual([]);
}
