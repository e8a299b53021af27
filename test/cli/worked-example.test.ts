/**
 * The README's worked example, run exactly as written with the built binary: the two shell
 * blocks after the marker in "## A worked example". `cd` changes folder, a line ending in `&`
 * and `alloy dev` (which runs until stopped) start in the background and are waited for, every
 * other line must exit 0. Offline: SHOPIFY_SHOP names an unresolvable host, so only the fake
 * can answer. Ports come from the documented variables (ALLOY_DEV_PORT, ALLOY_LISTEN_PORT,
 * ACME_STREAM_URL) so parallel test runs never collide; the defaults are checked separately.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, REPO_ROOT, tempDir } from '../helpers/cli.js';
import { DEFAULT_LISTEN_URL } from '../../src/cli/commands/listen.js';

const README = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');

/** The commands of the two sh blocks after the worked-example marker, comments stripped. */
function workedExample(): string[] {
  const section = README.slice(README.indexOf('## A worked example'));
  const after = section.slice(section.indexOf('<!-- test/cli/worked-example.test.ts'));
  const blocks = [...after.matchAll(/```sh\n([\s\S]*?)```/g)].slice(0, 2).map((m) => m[1]);
  return blocks
    .join('\n')
    .split('\n')
    .map((l) => l.replace(/\s+#.*$/, '').trim())
    .filter(Boolean);
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

function waitForOutput(child: ResultPromise, pattern: RegExp, what: string, timeoutMs = 30_000): Promise<void> {
  let seen = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not print ${pattern} in ${timeoutMs}ms:\n${seen}`)), timeoutMs);
    const onData = (chunk: Buffer) => {
      seen += chunk.toString();
      if (pattern.test(seen)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    void child.catch(() => {});
  });
}

describe('README worked example', () => {
  const background: ResultPromise[] = [];
  let work: Awaited<ReturnType<typeof tempDir>> | undefined;
  afterAll(async () => {
    for (const child of background) child.kill('SIGTERM');
    await Promise.all(background.map((c) => c.catch(() => {})));
    await work?.cleanup();
  });

  it('is the documented sequence', () => {
    expect(workedExample()).toEqual([
      'alloy init demo --yes',
      'cd demo',
      'alloy listen &',
      'alloy dev --fake shopify',
      'alloy emit acme.order.requested -d @integrations/shopify-sync/fixtures/acme-order-requested.json --wait',
      'alloy emit shopify:orders/create -d @integrations/shopify-sync/fixtures/orders-create.json --wait',
    ]);
  });

  it('the scaffold streams to alloy listen by default', () => {
    const wf = readFileSync(path.join(REPO_ROOT, 'examples/shopify-sync/integrations/shopify-sync/workflows/order-created.yaml'), 'utf8');
    expect(wf).toContain(`'${DEFAULT_LISTEN_URL}'`);
    expect(DEFAULT_LISTEN_URL).toBe('http://127.0.0.1:4100/alloy/stream');
  });

  it('runs as written, offline, with the built binary', async () => {
    work = await tempDir('alloy-worked-');
    const listenPort = await freePort();
    const env = {
      CI: 'true',
      NO_COLOR: '1',
      ALLOY_DEV_PORT: '0',
      ALLOY_LISTEN_PORT: String(listenPort),
      ACME_STREAM_URL: `http://127.0.0.1:${listenPort}/alloy/stream`,
      // Were the real Shopify called, this host cannot resolve: only the fake can answer.
      SHOPIFY_SHOP: 'no-such-shop.invalid',
      SHOPIFY_ACCESS_TOKEN: 'shpat_real_token_that_must_not_be_used',
      SHOPIFY_API_SECRET: 'real_secret_that_must_not_be_used',
    };
    let cwd = work.dir;
    const outputs: Record<string, string> = {};
    let listenOut = '';
    let devOut = '';
    for (const line of workedExample()) {
      if (line.startsWith('cd ')) {
        cwd = path.resolve(cwd, line.slice(3));
        continue;
      }
      const bg = line.endsWith('&');
      const words = line.replace(/&$/, '').trim().split(/\s+/);
      expect(words[0]).toBe('alloy');
      const args = words.slice(1);
      if (bg || args[0] === 'dev') {
        const child = execa('node', [BIN, ...args], { cwd, env, reject: false, buffer: false });
        background.push(child);
        child.stdout?.on('data', (c: Buffer) => (args[0] === 'listen' ? (listenOut += c) : (devOut += c)));
        child.stderr?.on('data', (c: Buffer) => (args[0] === 'listen' ? (listenOut += c) : (devOut += c)));
        await waitForOutput(child, args[0] === 'listen' ? /alloy listen ready/ : /Watching for changes/, line);
        continue;
      }
      const r = await execa('node', [BIN, ...args], { cwd, env, reject: false, timeout: 60_000 });
      outputs[line] = r.stdout + r.stderr;
      expect(r.exitCode, `${line}\n${r.stdout}\n${r.stderr}`).toBe(0);
    }
    expect(devOut).toMatch(/fake shopify\s+http:\/\/127\.0\.0\.1:\d+/);
    expect(Object.values(outputs).join('\n')).toMatch(/succeeded\s+shopify-sync\/create-order/);
    expect(Object.values(outputs).join('\n')).toMatch(/succeeded\s+shopify-sync\/order-created/);
    // The order was created in the fake: the step's output carries the fake's order id.
    const list = await execa('node', [BIN, 'executions', '--json', '--workflow', 'shopify-sync/create-order'], { cwd, env, reject: false });
    const id = JSON.parse(list.stdout).executions?.[0]?.id ?? JSON.parse(list.stdout)[0]?.id;
    const one = await execa('node', [BIN, 'executions', id, '--json'], { cwd, env, reject: false });
    expect(one.stdout).toMatch(/gid:\/\/shopify\/Order\/\d+/);
    // alloy listen received the streamed order and verified its signature.
    await expect.poll(() => listenOut, { timeout: 10_000 }).toMatch(/--> execution\.completed \[msg_ex_\w+\]\s+shopify-sync\/order-created/);
    expect(listenOut).toMatch(/<-- \[204\] POST \/alloy\/stream\s+signature verified/);
    expect(listenOut).not.toMatch(/NOT verified/);
  }, 120_000);
});
