/**
 * The scaffold's third and fourth workflows, run in-process against the shipped fake
 * Shopify: tag-customer adds the tags Acme's app asks for (shopify/addTags), and
 * daily-digest (the example schedule) maps its tick into a reconcile window.
 */
import { cp, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startFakeShopify, type FakeShopify } from '../fakes/fake-shopify.js';
import { REPO_ROOT, runInProcess, tempDir } from '../helpers/cli.js';

let fake: FakeShopify;
let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => {
  fake = await startFakeShopify();
});
afterAll(() => fake.close());
beforeEach(async () => {
  ({ dir, cleanup } = await tempDir('alloy-scaffold-'));
  await cp(path.join(REPO_ROOT, 'examples', 'shopify-sync'), dir, { recursive: true });
  await writeFile(path.join(dir, 'alloy.config.yaml'), `apiVersion: alloy/v1\nkind: Project\nname: s\napps:\n  shopify:\n    baseUrl: "${fake.url}"\n`);
  await writeFile(path.join(dir, '.env'), `SHOPIFY_SHOP=${fake.shop}\nSHOPIFY_ACCESS_TOKEN=${fake.accessToken}\n`);
  fake.reset();
});
afterEach(() => cleanup());

describe('scaffold workflows', () => {
  it('tag-customer adds the tags to the Shopify customer', async () => {
    const customer = fake.addCustomer({ email: 'jon@example.com' });
    const event = JSON.stringify({ customerId: customer.id, tags: ['vip', 'acme-gold'] });
    const r = await runInProcess(['run', 'shopify-sync/tag-customer', '--event', event], { cwd: dir });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(fake.customers.find((c) => c.id === customer.id)?.tags).toEqual(['vip', 'acme-gold']);
    const call = fake.requests.find((q) => q.operation === 'tagsAdd');
    expect((call?.json as { variables: { id: string } }).variables.id).toBe(`gid://shopify/Customer/${customer.id}`);
  });

  it('the bundled fixture validates against the trigger schema (dry run)', async () => {
    const r = await runInProcess(['run', 'shopify-sync/tag-customer', '--event', '@integrations/shopify-sync/fixtures/acme-customer-tagged.json', '--dry-run'], { cwd: dir });
    expect(r.code, r.stdout + r.stderr).toBe(0);
  });

  it('daily-digest turns a tick into the day before it', async () => {
    const r = await runInProcess(['run', 'shopify-sync/daily-digest', '--event', '{"scheduledAt":"2026-03-02T08:00:00.000Z","missed":false}', '--json'], { cwd: dir, env: { ACME_STREAM_URL: '' } });
    const rec = (JSON.parse(r.stdout) as { execution: { steps: Record<string, { output: unknown }> } }).execution;
    expect(rec.steps.window.output).toEqual({ from: '2026-03-01T08:00:00.000Z', to: '2026-03-02T08:00:00.000Z', missed: false });
  });
});
