/**
 * The web UI in `alloy serve`, in a real browser: the built binary (`alloy serve` over a data
 * folder and a store with shopify-sync v1 published and v2 released), the fake Shopify, and
 * Debian's Chromium driven headless by playwright-core. Signs in with an admin key (after a
 * wrong one is refused), sees users and installations, sees an execution arrive live after
 * `POST /v1/run/event`, opens its step trace, reruns it, upgrades an installation to v2; an
 * end-user token sees only its user's executions. axe-core checks every page; screenshots go
 * to test-results/web-ui/.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { stringify } from 'yaml';
import { startFakeShopify, type FakeShopify } from '../../src/testing/fake-shopify.js';
import { LocalStore } from '../../src/store/lib.js';
import { call, cleanup, exampleSource, releaseAndPublish, tempDir } from '../serve/helpers.js';
import { runAlloy, spawnServe } from '../serve/binary.js';
import { requireBuild } from '../runtime/helpers.js';
import { ARTEFACTS, checkAccessibility, CI_MISSING_BROWSER, HAVE_BROWSER, IN_CI, launchChromium, noBrowserNote, type LaunchedBrowser } from './browser.js';

noBrowserNote();

const order = (id: string, email: string) => ({ orderId: id, email, currency: 'EUR', lineItems: [{ title: 'Widget', quantity: 1, price: 9.5 }] });

describe.runIf(!HAVE_BROWSER && IN_CI)('web UI in alloy serve, in Chromium (CI)', () => {
  it('has Chromium', () => {
    throw new Error(CI_MISSING_BROWSER);
  });
});

describe.skipIf(!HAVE_BROWSER)('web UI in alloy serve, in Chromium', () => {
  let fake: FakeShopify;
  let served: Awaited<ReturnType<typeof spawnServe>>;
  let url: string;
  let admin: string;
  let ingest: string;
  let browser: LaunchedBrowser;
  let page: Page;
  const installations: Record<string, string> = {};

  const runEvent = async (userId: string, orderId: string): Promise<string> => {
    const r = await call(url, 'POST', '/v1/run/event', { token: ingest, body: { event: 'acme.order.requested', userId, data: order(orderId, `${userId}@example.com`) }, headers: { 'idempotency-key': orderId } });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    return r.body.executionIds[0] as string;
  };

  const signIn = async (token: string) => {
    await page.goto(`${url}/`);
    await page.getByLabel('API key or user token').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
  };

  beforeAll(async () => {
    requireBuild();
    fake = await startFakeShopify();
    const project = tempDir('alloy-serve-ui-');
    writeFileSync(path.join(project, 'alloy.config.yaml'), stringify({ apiVersion: 'alloy/v1', kind: 'Project', name: 'serve-ui', apps: { shopify: { baseUrl: fake.url } }, egress: { allow: ['127.0.0.1'] } }));
    const data = path.join(project, 'data');
    const storeDir = path.join(project, 'store');
    const env = { ALLOY_MASTER_KEY: Buffer.alloc(32, 5).toString('base64'), SHOPIFY_API_KEY: fake.clientId, SHOPIFY_API_SECRET: fake.clientSecret };
    const key = async (role: string) => {
      const r = await runAlloy(['serve', 'keys', 'create', '--role', role, '--data', data, '--json'], project, env);
      if (r.code !== 0) throw new Error(`keys create failed: ${r.stderr}`);
      return JSON.parse(r.stdout).key as string;
    };
    admin = await key('admin');
    ingest = await key('ingest');
    const store = new LocalStore(storeDir);
    await store.init();
    await releaseAndPublish(store, exampleSource());
    // v2 is released, not published: the UI upgrades one installation to it.
    await releaseAndPublish(store, exampleSource((def) => (def.description = 'v2 of the example')), false);
    served = await spawnServe(['--data', data, '--store', storeDir], project, env);
    url = served.url;
    for (const id of ['ann', 'bob']) {
      expect((await call(url, 'POST', '/v1/users', { token: admin, body: { id, name: id === 'ann' ? 'Ann Example' : 'Bob Example' } })).status).toBe(201);
      const cred = await call(url, 'POST', `/v1/users/${id}/credentials`, { token: admin, body: { app: 'shopify', kind: 'token', account: fake.shop, fields: { accessToken: fake.accessToken } } });
      expect(cred.status).toBe(201);
      const inst = await call(url, 'POST', '/v1/installations', { token: admin, body: { userId: id, integration: 'shopify-sync', credentials: { shopify: cred.body.id } } });
      expect(inst.status).toBe(201);
      installations[id] = inst.body.id;
    }
    browser = await launchChromium();
    page = browser.page;
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await served?.stop();
    await fake?.close();
    cleanup();
  }, 30_000);

  it('asks for a key, and refuses a wrong one with a clear message', async () => {
    const res = await page.goto(`${url}/`);
    expect(res?.status()).toBe(200);
    expect(res?.headers()['content-security-policy']).toContain("default-src 'none'");
    await page.getByRole('heading', { name: 'Sign in to alloy serve' }).waitFor();
    await checkAccessibility(page, 'the sign-in form');
    await page.getByLabel('API key or user token').fill('alk_admin_this-key-does-not-exist');
    await page.getByRole('button', { name: 'Sign in' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    expect(await alert.textContent()).toContain('This key or token was refused: unknown or expired token');
    await page.getByLabel('API key or user token').fill('not a token at all');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => alert.textContent()).toContain('neither an API key');
    await page.screenshot({ path: path.join(ARTEFACTS, 'serve-sign-in-refused.png'), fullPage: true });
    // Nothing was kept.
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
  }, 60_000);

  it('signs in with an admin key and shows users and installations', async () => {
    await signIn(admin);
    await expect.poll(() => page.getByTestId('live').textContent(), { timeout: 15_000 }).toBe('live');
    expect(await page.getByTestId('who').textContent()).toBe('admin key');
    // The key is in this tab's sessionStorage, not in a cookie.
    expect((await browser.context.cookies()).length).toBe(0);
    expect(await page.evaluate(() => sessionStorage.getItem('alloy.serve.session'))).toContain('"kind":"admin"');

    await page.getByRole('link', { name: 'Users' }).click();
    const ann = page.locator('[data-testid="users"] tr[data-id="ann"]');
    await ann.waitFor();
    expect(await ann.textContent()).toContain('Ann Example');
    await checkAccessibility(page, 'the users page');
    await page.screenshot({ path: path.join(ARTEFACTS, 'serve-users.png'), fullPage: true });

    await ann.getByRole('link', { name: 'Installations of ann' }).click();
    const inst = page.locator(`[data-testid="installations"] tr[data-id="${installations.ann}"]`);
    await inst.waitFor();
    expect(await inst.getAttribute('data-version')).toBe('1');
    expect(await inst.getAttribute('data-status')).toBe('active');
    expect(await page.locator('[data-testid="installations"] tbody tr').count()).toBe(1);
    await checkAccessibility(page, 'the installations page');
    await page.screenshot({ path: path.join(ARTEFACTS, 'serve-installations.png'), fullPage: true });
  }, 60_000);

  it('shows an execution arriving live after POST /v1/run/event, opens its step trace, and reruns it', async () => {
    await page.goto(`${url}/#/`);
    await page.getByRole('heading', { name: 'Executions' }).waitFor();
    await expect.poll(() => page.getByTestId('live').textContent(), { timeout: 15_000 }).toBe('live');
    const id = await runEvent('ann', 'UI-1');
    // No reload: the row comes over the stream (read from the state) and turns succeeded.
    const row = page.locator(`tr[data-id="${id}"]`);
    await row.waitFor({ timeout: 15_000 });
    await expect.poll(() => row.getAttribute('data-status'), { timeout: 20_000 }).toBe('succeeded');
    expect(await row.textContent()).toContain('ann');
    expect(await row.textContent()).toContain('v1');
    await checkAccessibility(page, 'the executions list');
    await page.screenshot({ path: path.join(ARTEFACTS, 'serve-executions.png'), fullPage: true });

    await row.getByRole('link', { name: id }).click();
    await page.getByTestId('execution').waitFor();
    const step = page.locator('[data-step="order"]');
    await step.waitFor();
    expect(await step.locator('.status').textContent()).toBe('succeeded');
    expect(await step.textContent()).toMatch(/\d+ ms|\d+\.\d s/);
    await step.getByText('Inputs of order').click();
    expect(await step.locator('pre').first().textContent()).toContain('ann@example.com');
    expect(await page.getByTestId('event').textContent()).toContain('UI-1');
    await checkAccessibility(page, 'the execution page');
    await page.screenshot({ path: path.join(ARTEFACTS, 'serve-execution-page.png'), fullPage: true });

    await page.getByRole('button', { name: 'Rerun', exact: true }).click();
    const rerun = page.getByTestId('replays').locator('li').first();
    await rerun.waitFor({ timeout: 15_000 });
    await expect.poll(() => rerun.getAttribute('data-status'), { timeout: 20_000 }).toBe('succeeded');
    const rerunId = (await rerun.getAttribute('data-id'))!;
    const viaApi = await call(url, 'GET', `/v1/executions/${rerunId}`, { token: admin });
    expect(viaApi.body).toMatchObject({ rerunOf: id, status: 'succeeded', userId: 'ann', version: 1 });
    expect(fake.ordersFor(fake.shop).filter((o) => o.email === 'ann@example.com')).toHaveLength(2);

    // Rerun from the last step on v2: the order step keeps its recorded result (no new order).
    await page.getByRole('button', { name: 'Rerun from a step or on a version…' }).click();
    await page.getByLabel('From step').selectOption('result');
    await page.getByLabel('On version').fill('2');
    await checkAccessibility(page, 'the rerun options');
    await page.getByRole('button', { name: 'Rerun with these' }).click();
    const second = page.getByTestId('replays').locator('li').nth(1);
    await second.waitFor({ timeout: 15_000 });
    await expect.poll(() => second.getAttribute('data-status'), { timeout: 20_000 }).toBe('succeeded');
    const fromStep = await call(url, 'GET', `/v1/executions/${await second.getAttribute('data-id')}`, { token: admin });
    expect(fromStep.body).toMatchObject({ rerunOf: id, version: 2, status: 'succeeded' });
    expect(fake.ordersFor(fake.shop).filter((o) => o.email === 'ann@example.com')).toHaveLength(2);
  }, 90_000);

  it('upgrades an installation to another version', async () => {
    await page.goto(`${url}/#/installations`);
    const inst = page.locator(`[data-testid="installations"] tr[data-id="${installations.ann}"]`);
    await inst.waitFor();
    await inst.getByLabel(`Version for ${installations.ann}`).fill('2');
    await inst.getByRole('button', { name: 'Upgrade' }).click();
    await expect.poll(() => inst.getAttribute('data-version')).toBe('2');
    expect(await inst.getByRole('status').textContent()).toBe('now on v2');
    expect((await call(url, 'GET', `/v1/installations/${installations.ann}`, { token: admin })).body.version).toBe(2);
    // A version that is not in the store is refused, and the row stays.
    await inst.getByLabel(`Version for ${installations.ann}`).fill('9');
    await inst.getByRole('button', { name: 'Upgrade' }).click();
    await expect.poll(() => inst.getByRole('status').textContent()).toContain('v9 is not in the store');
    expect(await inst.getAttribute('data-version')).toBe('2');
    await checkAccessibility(page, 'the installations page after an upgrade');
  }, 60_000);

  it("an end-user token sees only its user's executions, live too", async () => {
    const bobBefore = await runEvent('bob', 'UI-BOB-1');
    const token = (await call(url, 'POST', '/v1/users/ann/token', { token: admin })).body.token as string;
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in to alloy serve' }).waitFor();
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    await signIn(token);
    await expect.poll(() => page.getByTestId('live').textContent(), { timeout: 15_000 }).toBe('live');
    expect(await page.getByTestId('who').textContent()).toBe('user ann');
    // No Users page for a user token.
    expect(await page.getByRole('link', { name: 'Users' }).count()).toBe(0);
    await page.locator('tbody tr').first().waitFor();
    const users = await page.locator('tbody tr td:nth-child(4)').allTextContents();
    expect(users.length).toBeGreaterThan(0);
    expect(new Set(users)).toEqual(new Set(['ann']));
    expect(await page.locator(`tr[data-id="${bobBefore}"]`).count()).toBe(0);

    // Live: bob's new execution never shows; ann's does.
    const bobLive = await runEvent('bob', 'UI-BOB-2');
    const annLive = await runEvent('ann', 'UI-ANN-2');
    const row = page.locator(`tr[data-id="${annLive}"]`);
    await row.waitFor({ timeout: 15_000 });
    await expect.poll(() => row.getAttribute('data-status'), { timeout: 20_000 }).toBe('succeeded');
    expect(await row.textContent()).toContain('v2');
    expect(await page.locator(`tr[data-id="${bobLive}"]`).count()).toBe(0);
    // Another user's execution by its id: not found, no data.
    await page.goto(`${url}/#/executions/${bobLive}`);
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('no such execution');
    // A user token cannot rerun (admin only): no button.
    await page.goto(`${url}/#/executions/${annLive}`);
    await page.getByTestId('execution').waitFor();
    expect(await page.getByRole('button', { name: 'Rerun', exact: true }).count()).toBe(0);
    await checkAccessibility(page, "a user's execution page");
    await page.goto(`${url}/#/`);
    await row.waitFor();
    await checkAccessibility(page, "a user's executions list");
    await page.screenshot({ path: path.join(ARTEFACTS, 'serve-user-executions.png'), fullPage: true });
    expect(browser.cspErrors, 'no Content-Security-Policy violations').toEqual([]);
  }, 90_000);
});
