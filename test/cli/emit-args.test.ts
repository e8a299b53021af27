/**
 * `alloy emit shopify:<topic>` and `alloy emit --fixture`: a shop, topic or API version that cannot be an HTTP header
 * value is a usage error naming it (exit 2), not "cannot reach the alloy runtime" (exit 1).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runInProcess } from '../helpers/cli.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'alloy-emit-args-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('alloy emit header values', () => {
  it('refuses a shop, topic or API version with control or non-ASCII characters before sending', async () => {
    writeFileSync(path.join(dir, 'order.json'), '{"id":1}');
    const env = { SHOPIFY_API_SECRET: 'shh-secret' };
    // Port 9 (discard) on loopback: nothing listens, so reaching it would be E_DEV_UNREACHABLE.
    const base = ['--to', 'http://127.0.0.1:9', '-d', '@order.json', '--json'];
    const runs: [string[], string][] = [
      [['emit', 'shopify:orders/create', '--shop', 'evil\r\nX-Injected: 1', ...base], '--shop'],
      [['emit', 'shopify:orders/create', '--shop', 'acme-tést.myshopify.com', ...base], '--shop'],
      [['emit', 'shopify:orders/create\nx', ...base], 'topic'],
      [['emit', 'shopify:orders/create', '--api-version', '2025-01\u0000', ...base], '--api-version'],
    ];
    for (const [args, names] of runs) {
      const r = await runInProcess(args, { cwd: dir, env });
      const error = JSON.parse(r.stdout).error;
      expect([r.code, error.code], r.stdout).toEqual([2, 'E_USAGE']);
      expect(error.message, r.stdout).toContain(names);
    }
  });

  it('refuses a recorded fixture whose copied header values cannot be sent, naming the file (it reached the send as E_DEV_UNREACHABLE, exit 1)', async () => {
    const env = { SHOPIFY_API_SECRET: 'shh-secret' };
    const shopifyFx = (headers: Record<string, unknown>) => ({ alloyFixture: 1, source: 'shopify', name: 'orders/create', method: 'POST', path: '/v1/webhooks/shopify', headers, body: '{"id":1}' });
    const cases: [string, unknown][] = [
      ['x-shopify-shop-domain', shopifyFx({ 'x-shopify-shop-domain': 'evil\r\nX-Injected: 1' })],
      ['x-shopify-shop-domain', shopifyFx({ 'x-shopify-shop-domain': 'acme-tést.myshopify.com' })],
      ['x-shopify-topic', shopifyFx({ 'x-shopify-topic': 'orders/create\n' })],
      ['x-shopify-api-version', shopifyFx({ 'x-shopify-api-version': 7 })],
      ['content-type', { ...shopifyFx({ 'content-type': 'application/json\r\nX-Injected: 1' }), source: 'event', path: '/v1/run/event' }],
    ];
    for (const [i, [header, fx]] of cases.entries()) {
      const file = `fx-${i}.json`;
      writeFileSync(path.join(dir, file), JSON.stringify(fx));
      const r = await runInProcess(['emit', '--fixture', file, '--to', 'http://127.0.0.1:9', '--json'], { cwd: dir, env });
      const error = JSON.parse(r.stdout).error;
      expect([r.code, error.code], r.stdout).toEqual([2, 'E_FIXTURE']);
      expect(error.message, r.stdout).toContain(file);
      expect(error.message, r.stdout).toContain(header);
    }
    // A content type with a parameter (a space inside) is a fine header value: it gets as far as the send.
    writeFileSync(path.join(dir, 'ok.json'), JSON.stringify({ ...shopifyFx({ 'content-type': 'application/json; charset=utf-8' }), source: 'event', path: '/v1/run/event' }));
    const ok = await runInProcess(['emit', '--fixture', 'ok.json', '--to', 'http://127.0.0.1:9', '--json'], { cwd: dir, env });
    expect(JSON.parse(ok.stdout).error.code, ok.stdout).toBe('E_DEV_UNREACHABLE');
  });

  it("refuses the project's topic fixture when it is there but not a regular file; only a missing one is looked past", async () => {
    const project = path.join(dir, 'project');
    const env = { SHOPIFY_API_SECRET: 'shh-secret' };
    const fixtures = (name: string) => path.join(project, 'integrations', name, 'fixtures');
    mkdirSync(fixtures('a-first'), { recursive: true });
    mkdirSync(fixtures('b-second'), { recursive: true });
    writeFileSync(path.join(project, 'integrations', 'c-file'), '');
    const theirs = path.join(fixtures('a-first'), 'orders-create.json');
    for (const [kind, make] of [
      ['a named pipe', () => execFileSync('mkfifo', [theirs])],
      ['a link to /dev/zero', () => symlinkSync('/dev/zero', theirs)],
      ['a folder', () => mkdirSync(theirs)],
    ] as const) {
      rmSync(theirs, { recursive: true, force: true });
      make();
      const started = Date.now();
      const r = await runInProcess(['emit', 'shopify:orders/create', '--to', 'http://127.0.0.1:9', '--json'], { cwd: project, env });
      const error = JSON.parse(r.stdout).error;
      expect([r.code, error.code], `${kind}: ${r.stdout}`).toEqual([2, 'E_DATA_FILE']);
      expect(error.message, kind).toContain(path.join('integrations', 'a-first', 'fixtures', 'orders-create.json'));
      expect(error.message, kind).toContain('not a regular file');
      expect(Date.now() - started, kind).toBeLessThan(5000);
    }
    // Missing in the first integration, a regular file in the second: that one is sent.
    rmSync(theirs, { recursive: true, force: true });
    writeFileSync(path.join(fixtures('b-second'), 'orders-create.json'), '{"id":1}');
    const r = await runInProcess(['emit', 'shopify:orders/create', '--to', 'http://127.0.0.1:9', '--json'], { cwd: project, env });
    expect(JSON.parse(r.stdout).error.code, r.stdout).toBe('E_DEV_UNREACHABLE');
    expect(r.stderr).toContain(path.join('b-second', 'fixtures', 'orders-create.json'));
  });
});

describe('--to', () => {
  it('a --to without http(s) is E_BAD_URL (exit 2) naming the fix: `localhost:4000` was "internal error Invalid URL", file:// E_DEV_UNREACHABLE', async () => {
    writeFileSync(path.join(dir, 'e.json'), '{}');
    for (const [args, hint] of [
      [['emit', 'x', '-d', '@e.json', '--to', 'localhost:4712'], 'http://localhost:4712'],
      [['emit', 'x', '-d', '@e.json', '--to', 'file:///etc/passwd'], 'http://127.0.0.1:4000'],
      [['replay', 'ex_1', '--to', '127.0.0.1:4000'], 'http://127.0.0.1:4000'],
      [['executions', '--to', 'localhost:4000'], 'http://localhost:4000'],
    ] as [string[], string][]) {
      const r = await runInProcess(args, { cwd: dir });
      expect([args.join(' '), r.code, r.stderr]).toEqual([args.join(' '), 2, expect.stringContaining('E_BAD_URL')]);
      expect(r.stderr).toContain(hint);
      expect(r.stderr).not.toContain('internal error');
    }
  });
});
