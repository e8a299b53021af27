/**
 * The web UI in a real browser: Debian's Chromium driven headless by playwright-core,
 * against the built binary (`alloy dev` on the example project, the fake Shopify, a
 * workflow that fails). Opens the list, sees executions arrive live after `alloy emit`,
 * opens one, replays it (plainly, by keyboard, and with an edited event) and sees the
 * replays arrive; the same for a failed step and its error. axe-core checks labels and
 * roles on every page; keyboard navigation is driven with Tab/Enter. Screenshots go to
 * test-results/web-ui/ (gitignored; CI keeps them as artefacts).
 *
 * Without Chromium the tests skip with one line saying how to run them; under CI
 * (CI=true) a missing browser is a failure.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendFileSync, cpSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { startFakeShopify, type FakeShopify } from '../fakes/fake-shopify.js';
import { REPO_ROOT, tempDir } from '../server/helpers.js';
import { requireBuild, runAlloy, startDev, startSink } from '../runtime/helpers.js';
import { ARTEFACTS, checkAccessibility as axeCheck, CI_MISSING_BROWSER, HAVE_BROWSER, IN_CI, launchChromium, noBrowserNote, type LaunchedBrowser } from './browser.js';

const SHOPIFY_SECRET = 'shpss_browser_secret';

noBrowserNote();

const EXPLODE = `apiVersion: alloy/v1
kind: Workflow
name: explode
description: Fails on purpose, to show a failed step in the web UI.
trigger:
  event: acme.explode
steps:
  - id: check
    uses: transform
    with:
      ok: "{{ event.ok }}"
  - id: boom
    name: Refuse the order
    uses: transform
    with:
      value: "{{ $error('the order ' & event.orderId & ' is broken') }}"
`;

// Under CI a missing browser is a failed test, not a skip.
describe.runIf(!HAVE_BROWSER && IN_CI)('web UI in Chromium (CI)', () => {
  it('has Chromium', () => {
    throw new Error(CI_MISSING_BROWSER);
  });
});

describe.skipIf(!HAVE_BROWSER)('web UI in Chromium', () => {
  let tmp: ReturnType<typeof tempDir>;
  let root: string;
  let fake: FakeShopify;
  let sink: Awaited<ReturnType<typeof startSink>>;
  let dev: Awaited<ReturnType<typeof startDev>>;
  let browser: LaunchedBrowser;
  let page: Page;
  let cspErrors: string[];

  beforeAll(async () => {
    requireBuild();
    if (!existsSync(path.join(REPO_ROOT, 'dist', 'ui', 'index.html'))) throw new Error('dist/ui is missing: run `npm run build`');
    mkdirSync(ARTEFACTS, { recursive: true });
    tmp = tempDir('alloy-browser-');
    root = path.join(tmp.dir, 'project');
    cpSync(path.join(REPO_ROOT, 'examples', 'shopify-sync'), root, { recursive: true });
    writeFileSync(path.join(root, 'integrations', 'shopify-sync', 'workflows', 'explode.yaml'), EXPLODE);
    writeFileSync(path.join(root, 'integrations', 'shopify-sync', 'fixtures', 'acme-explode.json'), JSON.stringify({ orderId: 'acme-666', ok: false }, null, 2));
    fake = await startFakeShopify();
    appendFileSync(path.join(root, 'alloy.config.yaml'), `apps:\n  shopify:\n    baseUrl: ${fake.url}\n`);
    sink = await startSink();
    writeFileSync(
      path.join(root, '.env'),
      `SHOPIFY_SHOP=${fake.shop}\nSHOPIFY_ACCESS_TOKEN=${fake.accessToken}\nSHOPIFY_API_SECRET=${SHOPIFY_SECRET}\nACME_STREAM_URL=${sink.url}/acme/stream\n`,
    );
    dev = await startDev(root);
    browser = await launchChromium();
    page = browser.page;
    cspErrors = browser.cspErrors;
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    dev?.proc.kill('SIGTERM');
    await dev?.proc.catch(() => {});
    await fake?.close();
    await sink?.close();
    tmp?.cleanup();
  }, 30_000);

  const checkAccessibility = (what: string) => axeCheck(page, what);

  async function emit(event: string, fixture: string): Promise<string> {
    const r = await runAlloy(root, ['emit', event, '-d', `@integrations/shopify-sync/fixtures/${fixture}`, '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    return JSON.parse(r.stdout).executions[0].id as string;
  }

  it('is printed in the banner and served with a strict CSP', async () => {
    expect(dev.output()).toContain(`web UI           ${dev.url}/`);
    const res = await page.goto(`${dev.url}/`);
    expect(res?.status()).toBe(200);
    expect(res?.headers()['content-security-policy']).toContain("default-src 'none'");
    await expect.poll(() => page.getByTestId('live').textContent(), { timeout: 10_000 }).toBe('live');
    await page.getByRole('heading', { name: 'Executions' }).waitFor();
    await checkAccessibility('the empty executions list');
  });

  it('shows a new execution live after `alloy emit`, opens it by keyboard and replays it', async () => {
    const id = await emit('acme.order.requested', 'acme-order-requested.json');
    // No reload: the row arrives over the event stream and turns succeeded.
    const row = page.locator(`tr[data-id="${id}"]`);
    await row.waitFor({ timeout: 15_000 });
    await expect.poll(() => row.getAttribute('data-status'), { timeout: 15_000 }).toBe('succeeded');
    await page.screenshot({ path: path.join(ARTEFACTS, 'executions-list.png'), fullPage: true });
    await checkAccessibility('the executions list');

    // Keyboard only: Tab to the execution's link, Enter opens it.
    await page.locator('body').focus();
    let reached = false;
    for (let i = 0; i < 30 && !reached; i++) {
      await page.keyboard.press('Tab');
      reached = await page.evaluate((x) => (document.activeElement as HTMLAnchorElement | null)?.textContent === x, id);
    }
    expect(reached, 'Tab reaches the execution link').toBe(true);
    await page.keyboard.press('Enter');
    await page.getByTestId('execution').waitFor();
    expect(page.url()).toContain(`#/executions/${id}`);
    await page.locator('[data-step="order"]').waitFor();
    await expect.poll(() => page.locator('[data-step="order"] .status').textContent()).toBe('succeeded');
    await page.locator('[data-step="result"]').getByText('Output of result').click();
    expect(await page.getByTestId('event').textContent()).toContain('jon@example.com');
    await page.screenshot({ path: path.join(ARTEFACTS, 'execution-page.png'), fullPage: true });
    await checkAccessibility('the execution page');

    // Replay by keyboard: focus the button, press Enter; the replay arrives live.
    await page.getByRole('button', { name: 'Replay', exact: true }).focus();
    await page.keyboard.press('Enter');
    const replay = page.getByTestId('replays').locator('li').first();
    await replay.waitFor({ timeout: 15_000 });
    await expect.poll(() => replay.getAttribute('data-status'), { timeout: 15_000 }).toBe('succeeded');

    // Replay with an edited event.
    await page.getByRole('button', { name: 'Replay with edited event…' }).click();
    const editor = page.getByLabel('Event (JSON)');
    const edited = JSON.parse(await editor.inputValue());
    edited.email = 'edited@example.com';
    await editor.fill(JSON.stringify(edited, null, 2));
    await checkAccessibility('the replay editor');
    await page.getByRole('button', { name: 'Replay with this event' }).click();
    const second = page.getByTestId('replays').locator('li').nth(1);
    await second.waitFor({ timeout: 15_000 });
    await expect.poll(() => second.getAttribute('data-status'), { timeout: 15_000 }).toBe('succeeded');
    const secondId = (await second.getAttribute('data-id'))!;
    await second.getByRole('link').click();
    await page.locator(`[data-testid="execution"]`).waitFor();
    await expect.poll(() => page.getByTestId('event').textContent()).toContain('edited@example.com');
    expect(fake.orders.map((o) => o.email)).toContain('edited@example.com');
    expect(page.url()).toContain(secondId);
  }, 90_000);

  it('shows a failed step with its error, live, and replays it', async () => {
    await page.goto(`${dev.url}/#/`);
    await expect.poll(() => page.getByTestId('live').textContent(), { timeout: 10_000 }).toBe('live');
    const id = await emit('acme.explode', 'acme-explode.json');
    const row = page.locator(`tr[data-id="${id}"]`);
    await row.waitFor({ timeout: 15_000 });
    await expect.poll(() => row.getAttribute('data-status'), { timeout: 15_000 }).toBe('failed');
    expect(await row.locator('td.err').textContent()).toContain('the order acme-666 is broken');
    // Filter by status: only failed executions remain.
    await page.getByLabel('Status').selectOption('failed');
    await expect.poll(() => page.locator('tbody tr').count()).toBe(1);
    await page.getByLabel('Search by id').fill(id.slice(0, -3));
    await expect.poll(() => page.locator('tbody tr').count()).toBe(1);
    await page.getByLabel('Search by id').fill('ex_nothing_like_this');
    await expect.poll(() => page.locator('tbody tr').count()).toBe(0);
    await page.getByLabel('Search by id').fill('');
    await checkAccessibility('the filtered list');

    await row.getByRole('link', { name: id }).click();
    await page.getByTestId('execution').waitFor();
    const boom = page.locator('[data-step="boom"]');
    await boom.waitFor();
    expect(await boom.locator('.status').textContent()).toBe('failed');
    expect(await boom.getByTestId('error').textContent()).toContain('the order acme-666 is broken');
    await page.screenshot({ path: path.join(ARTEFACTS, 'execution-failed.png'), fullPage: true });
    await checkAccessibility('a failed execution');
    await page.getByRole('button', { name: 'Replay', exact: true }).click();
    const replay = page.getByTestId('replays').locator('li').first();
    await replay.waitFor({ timeout: 15_000 });
    await expect.poll(() => replay.getAttribute('data-status'), { timeout: 15_000 }).toBe('failed');
  }, 90_000);

  it('shows the stream delivery of a Shopify webhook and its answer', async () => {
    const r = await runAlloy(root, ['emit', 'shopify:orders/create', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const id = JSON.parse(r.stdout).executions[0].id as string;
    await page.goto(`${dev.url}/#/executions/${id}`);
    await page.getByTestId('execution').waitFor();
    const stream = page.getByTestId('stream');
    await stream.waitFor({ timeout: 15_000 });
    expect(await stream.textContent()).toContain('delivered');
    expect(await stream.textContent()).toContain('HTTP 200');
    expect(sink.requests.some((q) => q.path === '/acme/stream')).toBe(true);
    await page.locator('[data-step="summary"]').getByText('Output of summary').click();
    await page.screenshot({ path: path.join(ARTEFACTS, 'execution-stream.png'), fullPage: true });
    await checkAccessibility('an execution with a stream delivery');
  }, 60_000);

  it('lists workflows with triggers and fixtures, and sends a fixture', async () => {
    await page.goto(`${dev.url}/#/workflows`);
    await page.getByRole('heading', { name: 'Workflows' }).waitFor();
    const wf = page.locator('[data-workflow="shopify-sync/create-order"]');
    await wf.waitFor();
    expect(await wf.textContent()).toContain('event acme.order.requested');
    await checkAccessibility('the workflows page');
    await wf.getByRole('button', { name: 'Send acme-order-requested.json to shopify-sync/create-order' }).click();
    const link = wf.getByRole('status').getByRole('link');
    await link.waitFor({ timeout: 15_000 });
    await link.click();
    await page.getByTestId('execution').waitFor();
    await expect.poll(async () => (await page.getByTestId('execution').getAttribute('data-status')) ?? '', { timeout: 15_000 }).toBe('succeeded');
    // A new workflow file appears on the page by itself (hot reload, then the `definitions` event).
    await page.goto(`${dev.url}/#/workflows`);
    await wf.waitFor();
    writeFileSync(path.join(root, 'integrations', 'shopify-sync', 'workflows', 'extra.yaml'), EXPLODE.replace('name: explode', 'name: extra').replace('acme.explode', 'acme.extra'));
    await page.locator('[data-workflow="shopify-sync/extra"]').waitFor({ timeout: 15_000 });
    expect(cspErrors, 'no Content-Security-Policy violations').toEqual([]);
  }, 60_000);
});
