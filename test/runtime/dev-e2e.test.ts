/**
 * End to end with the built binary: the example project under `alloy dev`, driven by
 * `alloy emit`, `executions`, `replay` and `logs`, against the fake Shopify and a local
 * receiver that verifies the Standard Webhooks signature of the stream.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, readFileSync, readdirSync, writeFileSync, appendFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { startFakeShopify, type FakeShopify } from '../fakes/fake-shopify.js';
import { verifyStandardWebhook } from '../../src/engine/standard-webhooks.js';
import { REPO_ROOT, tempDir } from '../server/helpers.js';
import { requireBuild, runAlloy, startDev } from './helpers.js';

const SHOPIFY_SECRET = 'shpss_e2e_secret';

describe('alloy dev + emit on the example project', () => {
  let tmp: ReturnType<typeof tempDir>;
  let fake: FakeShopify;
  let receiver: http.Server;
  const streamed: { headers: http.IncomingHttpHeaders; body: string }[] = [];
  let receiverUrl: string;
  let dev: Awaited<ReturnType<typeof startDev>>;
  let root: string;

  beforeAll(async () => {
    requireBuild();
    tmp = tempDir('alloy-dev-e2e-');
    root = path.join(tmp.dir, 'project');
    cpSync(path.join(REPO_ROOT, 'examples', 'shopify-sync'), root, { recursive: true });
    fake = await startFakeShopify();
    receiver = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        streamed.push({ headers: req.headers, body });
        res.end('ok');
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/alloy/stream`;
    appendFileSync(path.join(root, 'alloy.config.yaml'), `apps:\n  shopify:\n    baseUrl: ${fake.url}\n`);
    writeFileSync(
      path.join(root, '.env'),
      `SHOPIFY_SHOP=${fake.shop}\nSHOPIFY_ACCESS_TOKEN=${fake.accessToken}\nSHOPIFY_API_SECRET=${SHOPIFY_SECRET}\nACME_STREAM_URL=${receiverUrl}\n`,
    );
    dev = await startDev(root, ['--record']);
  });
  afterAll(async () => {
    dev?.proc.kill('SIGKILL');
    await fake?.close();
    await new Promise<void>((r) => (receiver ? receiver.close(() => r()) : r()));
    tmp?.cleanup();
  });

  it('prints its endpoints and the stream secret, stable across restarts', () => {
    const out = dev.output();
    expect(out).toContain(`POST ${dev.url}/v1/run/event`);
    expect(out).toContain(`POST ${dev.url}/v1/webhooks/shopify`);
    expect(out).toMatch(/stream secret\s+whsec_[A-Za-z0-9+/=]{40,}/);
    const secret = readFileSync(path.join(root, '.alloy', 'stream-secret'), 'utf8').trim();
    expect(out).toContain(secret);
  });

  it('serves the built web UI at the URL the banner prints, with a strict CSP', async () => {
    expect(dev.output()).toMatch(new RegExp(`web UI\\s+${dev.url.replace(/[.]/g, '\\.')}/\\s+\\(this machine only\\)`));
    const page = await fetch(`${dev.url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    const html = await page.text();
    const script = /src="\.\/(assets\/[^"]+\.js)"/.exec(html)?.[1];
    expect(script, html).toBeDefined();
    const js = await fetch(`${dev.url}/${script}`);
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect((await js.text()).length).toBeGreaterThan(1000);
    // No inline script for the CSP to refuse.
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
  });

  it('emit acme.order.requested --wait creates the order in the fake Shopify', async () => {
    const r = await runAlloy(root, ['emit', 'acme.order.requested', '-d', '@integrations/shopify-sync/fixtures/acme-order-requested.json', '--wait', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.results[0]).toMatchObject({ workflow: 'shopify-sync/create-order', status: 'succeeded' });
    expect(fake.orders).toHaveLength(1);
    const event = JSON.parse(readFileSync(path.join(root, 'integrations/shopify-sync/fixtures/acme-order-requested.json'), 'utf8'));
    expect(fake.orders[0]).toMatchObject({ email: event.email });
    // The outbound call carried the execution's idempotency key.
    const call = fake.requests.find((q) => q.path.endsWith('/graphql.json'));
    expect(call?.headers['idempotency-key']).toBe(`${out.executions[0].id}:order`);
  });

  it('emit shopify:orders/create streams the order, signed with Standard Webhooks', async () => {
    const r = await runAlloy(root, ['emit', 'shopify:orders/create', '-d', path.join(REPO_ROOT, '..', 'shared', 'fixtures', 'shopify', 'orders-create.json'), '--wait']);
    // -d without @ is inline JSON: a path is not JSON, so this is a usage error (exit 2).
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('E_DATA_JSON');
    const ok = await runAlloy(root, ['emit', 'shopify:orders/create', '-d', `@${path.join(REPO_ROOT, '..', 'shared', 'fixtures', 'shopify', 'orders-create.json')}`, '--wait', '--shop', 'acme.myshopify.com']);
    expect(ok.exitCode, ok.stderr + ok.stdout).toBe(0);
    expect(ok.stdout).toMatch(/succeeded\s+shopify-sync\/order-created/);
    expect(streamed).toHaveLength(1);
    const secret = readFileSync(path.join(root, '.alloy', 'stream-secret'), 'utf8').trim();
    const check = verifyStandardWebhook(secret, streamed[0].headers as Record<string, string>, streamed[0].body, { nowSeconds: Math.floor(Date.now() / 1000) });
    expect(check).toEqual({ ok: true });
    const payload = JSON.parse(streamed[0].body);
    expect(JSON.stringify(payload)).toContain('450789469');
  });

  it('refuses a Shopify delivery signed with another secret, and nothing runs', async () => {
    const before = (await runAlloy(root, ['executions', '--json', '--limit', '1000'])).stdout;
    const r = await runAlloy(root, ['emit', 'shopify:orders/create'], { env: { SHOPIFY_API_SECRET: 'not-the-secret' } });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('E_BAD_SIGNATURE');
    const after = (await runAlloy(root, ['executions', '--json', '--limit', '1000'])).stdout;
    expect(JSON.parse(after).executions).toHaveLength(JSON.parse(before).executions.length);
  });

  it('emit with data that breaks the trigger schema exits 2 and names the JSON paths', async () => {
    const r = await runAlloy(root, ['emit', 'acme.order.requested', '-d', '{"email":"nope"}']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('/data/orderId');
    expect(r.stderr).toContain('/data/email');
  });

  it('executions, replay --wait and logs read the same log', async () => {
    const list = await runAlloy(root, ['executions', '--json']);
    const executions = JSON.parse(list.stdout).executions;
    const created = executions.find((e: any) => e.workflow === 'shopify-sync/create-order');
    expect(created.status).toBe('succeeded');
    const show = await runAlloy(root, ['executions', created.id]);
    expect(show.exitCode).toBe(0);
    expect(show.stdout).toMatch(/order\s+✓ succeeded/);
    const replay = await runAlloy(root, ['replay', created.id, '--wait', '--json']);
    expect(replay.exitCode, replay.stderr).toBe(0);
    const replayed = JSON.parse(replay.stdout);
    expect(replayed.result).toMatchObject({ status: 'succeeded', replayOf: created.id });
    expect(fake.orders).toHaveLength(2);
    const logs = await runAlloy(root, ['logs']);
    expect(logs.stdout).toContain(replayed.result.id);
    expect(logs.stdout).toContain(created.id);
    const failed = await runAlloy(root, ['executions', '--status', 'failed', '--json']);
    expect(JSON.parse(failed.stdout).executions).toEqual([]);
  });

  it('--record saves deliveries, and emit --fixture resends one re-signed with a fresh webhook id', async () => {
    const dir = path.join(root, '.alloy', 'recordings');
    const files = readdirSync(dir).filter((f) => f.includes('shopify'));
    expect(files.length).toBeGreaterThanOrEqual(1);
    const r = await runAlloy(root, ['emit', '--fixture', path.join(dir, files[0]), '--wait']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/succeeded\s+shopify-sync\/order-created/);
    expect(streamed).toHaveLength(2);
  });

  it('a second alloy dev on the same project refuses clearly', async () => {
    const second = await runAlloy(root, ['dev', '-p', '0']);
    expect(second.exitCode).toBe(1);
    expect(second.stderr).toContain('E_EVENT_LOG_LOCKED');
    expect(second.stderr).toContain(`pid ${dev.proc.pid}`);
  });

  it('hot-reloads a changed workflow and keeps the last good definitions on a broken file', async () => {
    const file = path.join(root, 'integrations/shopify-sync/workflows/order-created.yaml');
    const text = readFileSync(file, 'utf8');
    writeFileSync(file, text.replace('name: Map the Shopify order', 'name: Map the Shopify order (v2)'));
    await waitFor(() => /reloaded .*order-created\.yaml: ~ shopify-sync\/order-created/.test(dev.output()));
    writeFileSync(file, `${text}\nsteps: [\n`);
    await waitFor(() => dev.output().includes('still serving the last good definitions'));
    expect(dev.output()).toMatch(/order-created\.yaml:\d+:\d+/);
    // Still serving: a delivery runs on the last good definitions.
    const ok = await runAlloy(root, ['emit', 'shopify:orders/create', '--wait']);
    expect(ok.exitCode, ok.stderr).toBe(0);
    writeFileSync(file, text);
  });

  it('logs -f follows new executions until interrupted', async () => {
    const { execa } = await import('execa');
    const { BIN } = await import('./helpers.js');
    const follower = execa(process.execPath, [BIN, 'logs', '-f', '-n', '1'], { cwd: root, env: { NO_COLOR: '1' }, reject: false });
    let out = '';
    follower.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor(() => out.includes('\n'));
    const sent = await runAlloy(root, ['emit', 'shopify:orders/create', '--json']);
    const id = JSON.parse(sent.stdout).executions[0].id;
    await waitFor(() => out.includes(id));
    follower.kill('SIGINT');
    const end = await follower;
    expect(end.exitCode).toBe(0);
    expect(out).toMatch(new RegExp(`succeeded\\s+shopify-sync/order-created\\s+\\S+\\s+${id}`));
  });

  it('stops cleanly on SIGTERM: exit 0, dev.json removed', async () => {
    dev.proc.kill('SIGTERM');
    const end = await dev.proc;
    expect(end.exitCode).toBe(0);
    expect(readdirSync(path.join(root, '.alloy'))).not.toContain('dev.json');
    // Without a server, executions reads the file directly.
    const list = await runAlloy(root, ['executions', '--json']);
    expect(list.exitCode).toBe(0);
    expect(JSON.parse(list.stdout).executions.length).toBeGreaterThanOrEqual(4);
  });
});

async function waitFor(check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}
