/**
 * End to end: the built binary (`npm run build` first) runs the example project's two
 * workflows against the fake Shopify and a stream receiver that verifies signatures.
 */
import { cp, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyStandardWebhook } from '../../src/engine/standard-webhooks.js';
import { startFakeShopify, type FakeShopify } from '../fakes/fake-shopify.js';
import { json, startServer, type TestServer } from '../engine/helpers.js';
import { REPO_ROOT, runBin, tempDir } from '../helpers/cli.js';

const STREAM_SECRET = 'whsec_' + Buffer.from('e2e stream secret for alloy run').toString('base64');
let fake: FakeShopify;
let receiver: TestServer;
const checks: { ok: boolean; reason?: string }[] = [];
let dir: string;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  fake = await startFakeShopify();
  receiver = await startServer((req, res) => {
    const check = verifyStandardWebhook(STREAM_SECRET, req.headers as Record<string, string>, req.body, { nowSeconds: Math.floor(Date.now() / 1000) });
    checks.push(check);
    json(res, check.ok ? 200 : 401, { ok: check.ok });
  });
  ({ dir, cleanup } = await tempDir('alloy-run-e2e-'));
  await cp(path.join(REPO_ROOT, 'examples', 'shopify-sync'), dir, { recursive: true });
  await writeFile(path.join(dir, 'alloy.config.yaml'), `apiVersion: alloy/v1\nkind: Project\nname: e2e\napps:\n  shopify:\n    baseUrl: "${fake.url}"\n`);
  await writeFile(
    path.join(dir, '.env'),
    [`SHOPIFY_SHOP=${fake.shop}`, `SHOPIFY_ACCESS_TOKEN=${fake.accessToken}`, `ACME_STREAM_URL=${receiver.url}/alloy/stream`, `ACME_STREAM_SECRET=${STREAM_SECRET}`].join('\n'),
  );
});
afterAll(async () => {
  await fake.close();
  await receiver.close();
  await cleanup();
});

describe('alloy run (built binary)', () => {
  it('create-order creates the order in the fake Shopify', async () => {
    const r = await runBin(['run', 'shopify-sync/create-order', '--event', '@integrations/shopify-sync/fixtures/acme-order-requested.json'], { cwd: dir });
    expect(r.stderr).not.toMatch(/internal error/);
    expect(r.code).toBe(0);
    expect(fake.orders).toHaveLength(1);
    expect(r.stdout).toMatch(/✓ order\s+shopify\/createOrder/);
    expect(r.stdout).toMatch(/succeeded in \d+ms/);
  });

  it('order-created streams the Shopify order, signed, from stdin', async () => {
    const order = await readFile(path.join(dir, 'integrations/shopify-sync/fixtures/orders-create.json'), 'utf8');
    const r = await runBin(['run', 'shopify-sync/order-created', '--event', '@-', '--json'], { cwd: dir, input: order });
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.execution.status).toBe('succeeded');
    expect(out.execution.stream).toMatchObject({ status: 'delivered', statusCode: 200 });
    expect(checks).toEqual([{ ok: true }]);
    expect(JSON.parse(receiver.requests[0].body).data.steps.summary.output.orderId).toBe(JSON.parse(order).id);
    expect(r.stdout).not.toContain(STREAM_SECRET.slice(6));
  });

  it('a 400-class failure exits 1 without retrying', async () => {
    const before = fake.requests.length;
    fake.failNext(1, { status: 422, body: '{"errors":"unprocessable"}' });
    const r = await runBin(['run', 'shopify-sync/create-order', '--event', '@integrations/shopify-sync/fixtures/acme-order-requested.json'], { cwd: dir });
    expect(r.code).toBe(1);
    expect(fake.requests.length - before).toBe(1);
    expect(r.stdout).toMatch(/failed in \d+ms/);
  });
});
