/**
 * `alloy run` in-process against the example project, the fake Shopify and a stream receiver
 * that verifies Standard Webhooks signatures; all on 127.0.0.1.
 */
import { execFileSync } from 'node:child_process';
import { symlinkSync } from 'node:fs';
import { cp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { verifyStandardWebhook } from '../../src/engine/standard-webhooks.js';
import { startFakeShopify, type FakeShopify } from '../fakes/fake-shopify.js';
import { startServer, json, type TestServer } from '../engine/helpers.js';
import { REPO_ROOT, runInProcess, tempDir } from '../helpers/cli.js';

const STREAM_SECRET = 'whsec_' + Buffer.from('alloy run stream secret, test only').toString('base64');
const CREATE = ['run', 'shopify-sync/create-order', '--event', '@integrations/shopify-sync/fixtures/acme-order-requested.json'];

let fake: FakeShopify;
let receiver: TestServer;
let verified: boolean[] = [];
let dir: string;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  fake = await startFakeShopify();
  receiver = await startServer((req, res) => {
    const check = verifyStandardWebhook(STREAM_SECRET, req.headers as Record<string, string>, req.body, { nowSeconds: Math.floor(Date.now() / 1000) });
    verified.push(check.ok);
    json(res, check.ok ? 204 : 401, check.ok ? undefined : { error: check.reason });
  });
});
afterAll(async () => {
  await fake.close();
  await receiver.close();
});

beforeEach(async () => {
  ({ dir, cleanup } = await tempDir('alloy-run-'));
  await cp(path.join(REPO_ROOT, 'examples', 'shopify-sync'), dir, { recursive: true });
  await writeFile(
    path.join(dir, 'alloy.config.yaml'),
    `apiVersion: alloy/v1\nkind: Project\nname: run-test\napps:\n  shopify:\n    baseUrl: "${fake.url}"\n`,
  );
  await writeEnv({});
  fake.reset();
  verified = [];
});
afterEach(() => cleanup());

async function writeEnv(overrides: Record<string, string | undefined>) {
  const vars: Record<string, string | undefined> = {
    SHOPIFY_SHOP: fake.shop,
    SHOPIFY_ACCESS_TOKEN: fake.accessToken,
    ACME_STREAM_URL: `${receiver.url}/alloy/stream`,
    ACME_STREAM_SECRET: STREAM_SECRET,
    ...overrides,
  };
  const text = Object.entries(vars)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${v}`)
    .join('\n');
  await writeFile(path.join(dir, '.env'), `${text}\n`);
}

describe('alloy run', () => {
  it('creates the order in the fake Shopify and prints a readable trace', async () => {
    const r = await runInProcess(CREATE, { cwd: dir });
    expect(r.stderr).not.toContain('error');
    expect(r.code).toBe(0);
    expect(fake.orders).toHaveLength(1);
    expect(fake.orders[0]).toMatchObject({ email: 'jon@example.com', sourceIdentifier: 'acme-1001' });
    expect(r.stdout).toMatch(/✓ order\s+shopify\/createOrder\s+\d+ms/);
    expect(r.stdout).toMatch(/✓ result\s+transform/);
    expect(r.stdout).toContain('"acmeOrderId":"acme-1001"');
    expect(r.stdout).toMatch(/succeeded in \d+ms/);
    expect(r.stdout + r.stderr).not.toContain(fake.accessToken);
  });

  it('--json prints only the execution record, without secrets', async () => {
    const r = await runInProcess([...CREATE, '--json', '--user', 'acme'], { cwd: dir });
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.ok).toBe(true);
    expect(out.execution).toMatchObject({ workflow: 'shopify-sync/create-order', userId: 'acme', status: 'succeeded' });
    expect(out.execution.version).toMatch(/^wt-[0-9a-f]{12}$/);
    // One execution id format for run and dev (src/server/ids.ts): ex_<ms base36><12 hex>.
    expect(out.execution.id).toMatch(/^ex_[0-9a-z]{9}[0-9a-f]{12}$/);
    expect(out.execution.steps.order).toMatchObject({ status: 'succeeded', attempts: 1, inputs: { email: 'jon@example.com' } });
    expect(out.execution.steps.order.output.id).toMatch(/^gid:\/\/shopify\/Order\/\d+$/);
    expect(out.execution.steps.result.output.shopifyOrderId).toBe(out.execution.steps.order.output.id);
    expect(r.stdout).not.toContain(fake.accessToken);
    expect(fake.requests).toHaveLength(1);
    expect(fake.requests[0].headers['idempotency-key']).toBe(`${out.execution.id}:order`);
  });

  it('--dry-run prints the plan with resolved inputs and calls nothing', async () => {
    const r = await runInProcess([...CREATE, '--dry-run'], { cwd: dir });
    expect(r.code).toBe(0);
    expect(fake.requests).toHaveLength(0);
    expect(r.stdout).toContain('plan shopify-sync/create-order');
    expect(r.stdout).toMatch(/→ order shopify\/createOrder/);
    expect(r.stdout).toContain('"sourceIdentifier":"acme-1001"');
    expect(r.stdout).toContain('needs the run-time output of order');
    const j = await runInProcess([...CREATE, '--dry-run', '--json'], { cwd: dir });
    const plan = JSON.parse(j.stdout).plan;
    expect(plan.steps.map((s: { path: string }) => s.path)).toEqual(['order', 'result']);
    expect(fake.requests).toHaveLength(0);
  });

  it('--dry-run warns about credentials a real run would need and lacks; -v shows inputs in full', async () => {
    const full = await runInProcess([...CREATE, '--dry-run'], { cwd: dir });
    expect(full.stderr).not.toContain('warning');
    await writeEnv({ SHOPIFY_ACCESS_TOKEN: undefined });
    const r = await runInProcess([...CREATE, '--dry-run'], { cwd: dir, env: { SHOPIFY_ACCESS_TOKEN: '' } });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/warning: a real run needs shopify credentials it lacks \(order would fail\): .*SHOPIFY_ACCESS_TOKEN/);
    const j = await runInProcess([...CREATE, '--dry-run', '--json'], { cwd: dir, env: { SHOPIFY_ACCESS_TOKEN: '' } });
    expect(JSON.parse(j.stdout).warnings).toEqual([expect.stringContaining('SHOPIFY_ACCESS_TOKEN')]);
    const short = await runInProcess([...CREATE, '--dry-run'], { cwd: dir });
    const verbose = await runInProcess([...CREATE, '--dry-run', '-v'], { cwd: dir });
    const withLine = (t: string) => t.split('\n').find((l) => l.trim().startsWith('with'))!;
    expect(withLine(short.stdout)).toMatch(/…$/);
    expect(() => JSON.parse(withLine(verbose.stdout).trim().replace(/^with /, ''))).not.toThrow();
    expect(fake.requests).toHaveLength(0);
  });

  it('rejects an event that does not match the trigger schema, with JSON paths (exit 2)', async () => {
    const r = await runInProcess(['run', 'shopify-sync/create-order', '--event', '{"orderId":"x","email":"not-an-email","lineItems":[{"title":"t","quantity":0,"price":1}]}'], {
      cwd: dir,
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('E_EVENT_INVALID');
    expect(r.stderr).toContain('/email: must match format "email"');
    expect(r.stderr).toContain('/lineItems/0/quantity: must be >= 1');
    expect(fake.requests).toHaveLength(0);
  });

  it('refuses a number past 1.8e308 (JSON.parse: Infinity, which passed `minimum: 1` and ran as null), exit 2', async () => {
    for (const big of ['1e309', `1${'0'.repeat(240)}e70`]) {
      const r = await runInProcess(['run', 'shopify-sync/create-order', '--dry-run', '--event', `{"orderId":"x","email":"a@b.co","lineItems":[{"title":"t","quantity":${big},"price":1}]}`], { cwd: dir });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('E_EVENT_JSON');
      expect(r.stderr).toContain('too large');
    }
  });

  it('reads the event from stdin with @- and reports bad JSON clearly', async () => {
    const bad = await runInProcess(['run', 'shopify-sync/create-order', '--event', '{oops'], { cwd: dir });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('E_EVENT_JSON');
    const missing = await runInProcess(['run', 'shopify-sync/create-order', '--event', '@nope.json'], { cwd: dir });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('cannot read the event file nope.json');
    // A pipe or a device is refused at once, not read for ever.
    execFileSync('mkfifo', [path.join(dir, 'pipe.json')]);
    symlinkSync('/dev/zero', path.join(dir, 'zero.json'));
    for (const name of ['pipe.json', 'zero.json']) {
      const r = await runInProcess(['run', 'shopify-sync/create-order', '--event', `@${name}`], { cwd: dir });
      expect(r.code, name).toBe(2);
      expect(r.stderr, name).toContain('E_EVENT_FILE');
      expect(r.stderr, name).toContain('not a regular file');
    }
    await rm(path.join(dir, 'pipe.json'));
    await rm(path.join(dir, 'zero.json'));
  });

  it('streams order-created to the receiver, which verifies the signature', async () => {
    const r = await runInProcess(['run', 'shopify-sync/order-created', '--event', '@integrations/shopify-sync/fixtures/orders-create.json'], { cwd: dir });
    expect(r.code).toBe(0);
    expect(verified).toEqual([true]);
    const body = JSON.parse(receiver.requests.at(-1)!.body);
    expect(body.data.steps.summary.output).toMatchObject({ orderId: 450789469 });
    expect(r.stdout).toMatch(/streamed to http:\/\/127\.0\.0\.1:\d+\/alloy\/stream \(HTTP 204, 1 attempt/);
    expect(receiver.requests.at(-1)!.body).not.toContain(STREAM_SECRET.slice(6));
  });

  it('a failing step exits 1 with the error; credentials never printed', async () => {
    await writeEnv({ SHOPIFY_ACCESS_TOKEN: 'shpat_wrong_token_123' });
    const r = await runInProcess(CREATE, { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/✗ order/);
    expect(r.stdout).toMatch(/failed in \d+ms/);
    expect(r.stdout + r.stderr).not.toContain('shpat_wrong_token_123');
    expect(fake.orders).toHaveLength(0);
  });

  it('a missing credential names the variable to set', async () => {
    await writeEnv({ SHOPIFY_ACCESS_TOKEN: undefined });
    const r = await runInProcess(CREATE, { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toContain('SHOPIFY_ACCESS_TOKEN');
    expect(fake.requests).toHaveLength(0);
  });

  it('--user picks that user\'s connection (users/<id>.env)', async () => {
    const { mkdir } = await import('node:fs/promises');
    await mkdir(path.join(dir, 'users'));
    await writeFile(path.join(dir, 'users', 'other-shop.env'), 'SHOPIFY_ACCESS_TOKEN=shpat_other_users_token\n');
    const other = await runInProcess([...CREATE, '--user', 'other-shop', '--json'], { cwd: dir });
    expect(other.code).toBe(1);
    expect(fake.requests.at(-1)?.headers['x-shopify-access-token']).toBe('shpat_other_users_token');
    expect(other.stdout).not.toContain('shpat_other_users_token');
    const acme = await runInProcess([...CREATE, '--user', 'acme'], { cwd: dir });
    expect(acme.code).toBe(0);
    expect(fake.requests.at(-1)?.headers['x-shopify-access-token']).toBe(fake.accessToken);
  });

  it('an unknown workflow is a clear error', async () => {
    const r = await runInProcess(['run', 'shopify-sync/nope', '--event', '{}'], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('no workflow "shopify-sync/nope"');
  });
});
