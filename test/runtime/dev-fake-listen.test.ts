/**
 * `alloy dev --fake shopify` / `dev.fakes`, and `alloy listen`, with the built binary on real
 * sockets (ports 0): the fake is announced and used, `emit` signs as it, and listen verifies,
 * refuses bad signatures with 401, and appends to --out without following symlinks.
 */
import { appendFileSync, cpSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signStandardWebhook } from '../../src/engine/standard-webhooks.js';
import { REPO_ROOT, tempDir } from '../server/helpers.js';
import { BIN, requireBuild, runAlloy, startDev } from './helpers.js';

async function startListen(cwd: string, args: string[] = []): Promise<{ proc: ResultPromise; url: string; output: () => string }> {
  const proc = execa(process.execPath, [BIN, 'listen', '--port', '0', ...args], { cwd, env: { NO_COLOR: '1' }, reject: false, all: true });
  let output = '';
  proc.all!.on('data', (d: Buffer) => (output += d.toString()));
  const deadline = Date.now() + 15_000;
  for (;;) {
    const m = /ready: POST (http:\/\/127\.0\.0\.1:\d+)\/alloy\/stream/.exec(output);
    if (m) return { proc, url: m[1], output: () => output };
    if (proc.exitCode !== null || Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`alloy listen did not start:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('alloy dev with dev.fakes in the config, and alloy listen', () => {
  let tmp: ReturnType<typeof tempDir>;
  let root: string;
  let listen: Awaited<ReturnType<typeof startListen>>;
  let dev: Awaited<ReturnType<typeof startDev>>;

  beforeAll(async () => {
    requireBuild();
    tmp = tempDir('alloy-fake-');
    root = path.join(tmp.dir, 'project');
    cpSync(path.join(REPO_ROOT, 'examples', 'shopify-sync'), root, { recursive: true });
    appendFileSync(path.join(root, 'alloy.config.yaml'), 'dev:\n  fakes: [shopify]\n');
    listen = await startListen(root, ['--out', 'deliveries.jsonl']);
    // Real-looking credentials in .env that must not be used while the fake runs.
    writeFileSync(path.join(root, '.env'), `SHOPIFY_SHOP=no-such-shop.invalid\nSHOPIFY_ACCESS_TOKEN=shpat_real\nSHOPIFY_API_SECRET=real_secret\nACME_STREAM_URL=${listen.url}/alloy/stream\n`);
    dev = await startDev(root);
  }, 60_000);
  afterAll(async () => {
    dev?.proc.kill('SIGTERM');
    listen?.proc.kill('SIGTERM');
    await Promise.all([dev?.proc, listen?.proc].map((p) => p?.catch(() => {})));
    tmp?.cleanup();
  });

  it('says in the banner that Shopify is faked, and records it in dev.json', () => {
    expect(dev.output()).toMatch(/fake shopify\s+http:\/\/127\.0\.0\.1:\d+\s+\(shop alloy-dev\.myshopify\.com; the shopify connector and SHOPIFY_\* point here for this run\)/);
    expect(dev.output()).not.toContain('SHOPIFY_API_SECRET is not set');
    expect(JSON.parse(readFileSync(path.join(root, '.alloy', 'dev.json'), 'utf8')).fakes).toEqual(['shopify']);
    // The fake's webhook secret is never printed.
    expect(dev.output()).not.toMatch(/shpss_/);
  });

  it('creates orders in the fake and emits Shopify webhooks signed as the fake', async () => {
    const a = await runAlloy(root, ['emit', 'acme.order.requested', '-d', '@integrations/shopify-sync/fixtures/acme-order-requested.json', '--wait']);
    expect(a.exitCode, a.stdout + a.stderr).toBe(0);
    const b = await runAlloy(root, ['emit', 'shopify:orders/create', '--wait']);
    expect(b.exitCode, b.stdout + b.stderr).toBe(0);
    await expect.poll(() => listen.output(), { timeout: 10_000 }).toMatch(/<-- \[204\] POST \/alloy\/stream\s+signature verified/);
    expect(listen.output()).toMatch(/--> execution\.completed \[msg_ex_\w+\]\s+shopify-sync\/order-created\s+✓ succeeded/);
    const lines = readFileSync(path.join(root, 'deliveries.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.at(-1)).toMatchObject({ verified: true, status: 204, path: '/alloy/stream', body: { type: 'execution.completed', data: { workflow: 'shopify-sync/order-created' } } });
    expect(JSON.stringify(lines)).not.toMatch(/whsec_/);
  });

  it('answers 401 to a delivery that does not verify, and says why', async () => {
    const body = '{"type":"execution.completed","data":{}}';
    const ts = Math.floor(Date.now() / 1000);
    const res = await fetch(`${listen.url}/alloy/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'webhook-id': 'msg_forged', 'webhook-timestamp': String(ts), 'webhook-signature': signStandardWebhook('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'msg_forged', ts, body) },
      body,
    });
    expect(res.status).toBe(401);
    await expect.poll(() => listen.output(), { timeout: 5000 }).toMatch(/\[msg_forged\][\s\S]*<-- \[401\] POST \/alloy\/stream\s+signature NOT verified: /);
  });
});

describe('alloy listen usage', () => {
  it('refuses an --out path that is a symbolic link, and an unknown fake', async () => {
    const tmp = tempDir('alloy-listen-');
    try {
      writeFileSync(path.join(tmp.dir, 'target'), '');
      symlinkSync(path.join(tmp.dir, 'target'), path.join(tmp.dir, 'link.jsonl'));
      const r = await runAlloy(tmp.dir, ['listen', '--port', '0', '--secret', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', '--out', 'link.jsonl']);
      expect(r.exitCode).toBe(2);
      expect(r.stderr).toContain('E_LISTEN_OUT');
      expect(r.stderr).toContain('symbolic link');
      const none = await runAlloy(tmp.dir, ['listen', '--port', '0']);
      expect(none.exitCode).toBe(2);
      expect(none.stderr).toContain('E_LISTEN_SECRET');
      cpSync(path.join(REPO_ROOT, 'examples', 'shopify-sync'), path.join(tmp.dir, 'p'), { recursive: true });
      const bad = await runAlloy(path.join(tmp.dir, 'p'), ['dev', '-p', '0', '--fake', 'stripe']);
      expect(bad.exitCode).toBe(2);
      expect(bad.stderr).toContain('E_FAKE_UNKNOWN');
      expect(bad.stderr).toContain('apps alloy can fake: shopify');
    } finally {
      tmp.cleanup();
    }
  }, 60_000);
});
