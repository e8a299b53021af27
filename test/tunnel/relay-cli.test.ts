/**
 * End to end: the built `alloy relay` binary (run `npm run build` first), a relay client and
 * a stand-in dev server, all on loopback. Includes a real restart of the relay process with
 * its queue on disk.
 */
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { connectRelay, type RelayTunnel } from '../../src/tunnel/relay-client.js';
import { captureLogger, freePort, loadHmacVector, post, repoRoot, shopifyHmac, startStandInDevServer, tempDir, waitFor } from './helpers.js';

const bin = path.join(repoRoot, 'bin', 'alloy.js');
const TOKEN = 'e2e-alice-token-0123456789';

let dir: string;
let cleanup: () => Promise<void>;
const children: ResultPromise[] = [];
const closers: Array<() => Promise<void>> = [];

beforeAll(() => {
  if (!existsSync(path.join(repoRoot, 'dist', 'cli', 'commands', 'relay.js'))) {
    throw new Error('dist/ has no relay command: run `npm run build` before this test');
  }
});
beforeEach(async () => ({ dir, cleanup } = await tempDir('alloy-relay-cli-')));
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c().catch(() => {});
  for (const child of children.splice(0)) {
    child.kill('SIGKILL');
    await child.catch(() => {});
  }
  await cleanup();
});

function alloy(args: string[], env: Record<string, string> = {}) {
  return execa(process.execPath, [bin, ...args], {
    cwd: dir,
    env: { ...env, NO_COLOR: '1', PATH: process.env.PATH ?? '' },
    extendEnv: false,
    reject: false,
    // A command that should have refused to start must not hang the suite.
    timeout: 15_000,
  });
}

/** Spawn `alloy relay` for alice's token (killed after the test). */
function spawnRelay(args: string[]): ResultPromise {
  const child = execa(process.execPath, [bin, 'relay', ...args], {
    cwd: dir,
    env: { ALLOY_RELAY_TOKENS: `alice:${TOKEN}`, NO_COLOR: '1', PATH: process.env.PATH ?? '' },
    extendEnv: false,
    reject: false,
    buffer: false,
  });
  children.push(child);
  return child;
}

/** Start `alloy relay --json` and wait for its JSON start line. */
async function startRelay(port: number): Promise<{ child: ResultPromise; info: { url: string; connectUrl: string; names: string[]; publicUrls: Record<string, string> }; stderr: () => string }> {
  const child = spawnRelay(['--json', '--port', String(port), '--data', 'relay-data', '--queue-max', '5']);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  let info: any;
  await waitFor(() => {
    try {
      info = JSON.parse(out);
      return true;
    } catch {
      return false;
    }
  }, `alloy relay to start (stderr: ${err})`, 10_000);
  return { child, info, stderr: () => err };
}

describe('alloy relay (built binary)', () => {
  it("says developers need ALLOY_RELAY_TOKEN, and emit --to the relay reports its 202 as queued for an offline developer", async () => {
    const port = await freePort();
    const child = spawnRelay(['--port', String(port), '--data', 'relay-data']);
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    await waitFor(() => err.includes('data (offline queue)'), 'the relay banner', 10_000);
    expect(err).toContain('ALLOY_RELAY_TOKEN');
    const sent = await alloy(['emit', 'acme.order.requested', '-d', '{"orderId":"1"}', '--to', `http://127.0.0.1:${port}/t/alice`]);
    expect(sent.exitCode, sent.stderr).toBe(0);
    expect(sent.stdout).toContain('queued by the relay for alice, who is offline (position 1)');
    expect(sent.stderr).not.toContain('E_NOT_ALLOY');
  });

  it('relays a signed webhook, queues while the developer is away, and keeps the queue across a restart', async () => {
    const vector = await loadHmacVector();
    const port = await freePort();
    const first = await startRelay(port);
    expect(first.info.url).toBe(`http://127.0.0.1:${port}`);
    expect(first.info.names).toEqual(['alice']);
    expect(first.info.publicUrls.alice).toBe(`http://127.0.0.1:${port}/t/alice`);

    const dev = await startStandInDevServer(vector.secret);
    closers.push(dev.close);
    const logger = captureLogger();
    let tunnel: RelayTunnel = await connectRelay({ relayUrl: first.info.connectUrl, token: TOKEN, localUrl: dev.url, logger });
    closers.push(() => tunnel.close());
    const webhook = `${tunnel.publicUrl}/v1/webhooks/shopify`;
    const raw = Buffer.from(vector.raw_body, 'utf8');
    const live = await post(webhook, raw, { ...vector.headers, 'content-type': 'application/json' });
    expect(live.status).toBe(200);
    expect(dev.received[0].hmacValid).toBe(true);
    expect(dev.received[0].body.equals(raw)).toBe(true);

    // Developer goes away: deliveries are accepted and kept on disk.
    await tunnel.close();
    const sign = (id: string) => ({ ...vector.headers, 'X-Shopify-Webhook-Id': id, 'X-Shopify-Hmac-Sha256': shopifyHmac(vector.secret, raw) });
    await waitFor(() => first.stderr().includes('disconnected'), 'the relay to notice');
    expect((await post(webhook, raw, sign('away-1'))).status).toBe(202);
    expect((await post(webhook, raw, sign('away-2'))).status).toBe(202);

    // Relay restarts (SIGTERM: clean exit 0).
    first.child.kill('SIGTERM');
    const result = await first.child;
    expect(result.exitCode).toBe(0);
    expect(first.stderr()).toContain('shutting down');
    expect(first.stderr()).not.toContain(TOKEN);

    const second = await startRelay(port);
    tunnel = await connectRelay({ relayUrl: second.info.connectUrl, token: TOKEN, localUrl: dev.url, logger });
    expect(tunnel.publicUrl).toBe(first.info.publicUrls.alice);
    await waitFor(() => dev.received.length === 3, 'the queued deliveries');
    expect(dev.received.slice(1).map((r) => r.headers['x-shopify-webhook-id'])).toEqual(['away-1', 'away-2']);
    expect(dev.received.every((r) => r.hmacValid)).toBe(true);
    expect(second.stderr()).toContain('delivering 2 queued request(s)');
  });

  it('explains missing or bad configuration', async () => {
    const none = await alloy(['relay', '--port', '0']);
    expect(none.exitCode).toBe(1);
    expect(none.stderr).toContain('ALLOY_RELAY_TOKENS');
    expect(none.stderr).not.toMatch(/\n\s+at /); // no stack trace

    const bad = await alloy(['relay', '--port', '0'], { ALLOY_RELAY_TOKENS: 'alice:short' });
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain('shorter than 16');

    const port = await alloy(['relay', '--port', 'http'], { ALLOY_RELAY_TOKENS: `alice:${TOKEN}` });
    expect(port.exitCode).toBe(2);
    expect(port.stderr).toContain('--port');

    await writeFile(path.join(dir, 'tokens'), `# team\nalice:${TOKEN}\nBad Name:${TOKEN}x\n`);
    const file = await alloy(['relay', '--tokens-file', 'tokens']);
    expect(file.exitCode).toBe(2);
    expect(file.stderr).toContain('entry 2');
    expect(file.stderr).not.toContain(TOKEN);

    const help = await alloy(['relay', '--help']);
    expect(help.exitCode).toBe(0);
    expect(help.stdout).toContain('--tokens-file');
    expect(help.stdout).toContain('--queue-ttl');
  });

  it('a busy port or an unusable data directory is a clear error naming the flag, not an internal error', async () => {
    const env = { ALLOY_RELAY_TOKENS: `alice:${TOKEN}` };
    const blocker = createServer();
    await new Promise<void>((res) => blocker.listen(0, '127.0.0.1', () => res()));
    closers.push(() => new Promise<void>((res) => blocker.close(() => res())));
    const busyPort = (blocker.address() as AddressInfo).port;

    const busy = await alloy(['relay', '--port', String(busyPort), '--data', 'relay-data'], env);
    expect(busy.exitCode).toBe(1);
    expect(busy.stderr).toContain('E_RELAY_LISTEN');
    expect(busy.stderr).toContain(String(busyPort));
    expect(busy.stderr).toContain('--port');
    expect(busy.stderr).not.toContain('internal error');
    expect(busy.stderr).not.toMatch(/\n\s+at /);

    const busyJson = await alloy(['relay', '--json', '--port', String(busyPort), '--data', 'relay-data'], env);
    expect(busyJson.exitCode).toBe(1);
    expect(JSON.parse(busyJson.stdout).error.code).toBe('E_RELAY_LISTEN');

    // A data directory below a regular file cannot be created (ENOTDIR, whoever runs the test).
    await writeFile(path.join(dir, 'not-a-dir'), 'x');
    const data = await alloy(['relay', '--port', '0', '--data', 'not-a-dir/relay'], env);
    expect(data.exitCode).toBe(1);
    expect(data.stderr).toContain('E_RELAY_DATA');
    expect(data.stderr).toContain('--data');
    expect(data.stderr).not.toContain('internal error');
    expect(data.stderr).not.toMatch(/\n\s+at /);
  });

  it('refuses durations too long for a timer, naming the flag', async () => {
    const env = { ALLOY_RELAY_TOKENS: `alice:${TOKEN}` };
    const long = await alloy(['relay', '--port', '0', '--timeout', '30d'], env);
    expect(long.exitCode).toBe(2);
    expect(long.stderr).toContain('--timeout');
    expect(long.stderr).not.toContain('internal error');
    const ttl = await alloy(['relay', '--port', '0', '--queue-ttl', '9999999h'], env);
    expect(ttl.exitCode).toBe(2);
    expect(ttl.stderr).toContain('--queue-ttl');
  });
});
