import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startTunnel, type Tunnel } from '../../src/tunnel/index.js';
import { parseCloudflaredLine, parseNgrokLine, providerSpec } from '../../src/tunnel/providers.js';
import { captureLogger, loadHmacVector, post, shopifyHmac, startStandInDevServer, tempDir, waitFor, type StandInDevServer } from './helpers.js';

// What the real programs print (cloudflared 2024.x quick tunnel on stderr; ngrok v3 JSON log on stdout).
const CLOUDFLARED_LINES = [
  '2026-11-29T09:00:00Z INF Thank you for trying Cloudflare Tunnel. Doing so, without a Cloudflare account, is a quick way to experiment and try it out. However, be aware that these account-less Tunnels have no uptime guarantee. If you intend to use Tunnels in production you should use a pre-created named tunnel by following: https://developers.cloudflare.com/cloudflare-one/connections/connect-apps',
  '2026-11-29T09:00:00Z INF Requesting new quick Tunnel on trycloudflare.com...',
  '2026-11-29T09:00:01Z INF +--------------------------------------------------------------------------------------------+',
  '2026-11-29T09:00:01Z INF |  Your quick Tunnel has been created! Visit it at (it may take some time to be reachable):  |',
  '2026-11-29T09:00:01Z INF |  https://seasonal-deck-organisms-sf.trycloudflare.com                                      |',
  '2026-11-29T09:00:01Z INF +--------------------------------------------------------------------------------------------+',
  '2026-11-29T09:00:02Z INF Registered tunnel connection connIndex=0 connection=1b2c location=ams01 protocol=quic',
];
const NGROK_LINES = [
  '{"addr":"","lvl":"info","msg":"no configuration paths supplied","t":"2026-11-29T09:00:00Z"}',
  '{"addr":"127.0.0.1:4040","lvl":"info","msg":"starting web service","obj":"web","t":"2026-11-29T09:00:00Z"}',
  '{"lvl":"info","msg":"client session established","obj":"tunnels.session","t":"2026-11-29T09:00:01Z"}',
  '{"addr":"http://127.0.0.1:PORT","lvl":"info","msg":"started tunnel","name":"command_line","obj":"tunnels","t":"2026-11-29T09:00:01Z","url":"https://1a2b-203-0-113-7.ngrok-free.app"}',
];
const NGROK_AUTH_FAILURE =
  '{"err":"authentication failed: Usage of ngrok requires a verified account and authtoken.\\n\\nSign up for an account: https://dashboard.ngrok.com/signup\\r\\n\\r\\nERR_NGROK_4018\\r\\n","lvl":"eror","msg":"failed to reconnect session","obj":"tunnels.session","t":"2026-11-29T09:00:01Z"}';

let dir: string;
let cleanup: () => Promise<void>;
let dev: StandInDevServer;
let secret: string;
const open: Tunnel[] = [];

beforeEach(async () => {
  ({ dir, cleanup } = await tempDir('alloy-providers-'));
  secret = (await loadHmacVector()).secret;
  dev = await startStandInDevServer(secret);
});

afterEach(async () => {
  for (const t of open.splice(0)) await t.close().catch(() => {});
  await dev.close();
  await cleanup();
});

/**
 * A stand-in executable named `name` in the temp dir: records its argv and pid, prints
 * `lines` on `stream`, then behaves per `mode` (stay up until SIGTERM, exit, or die later:
 * with exit code 3 once the test creates `<log>.die`, so the test decides when, not a timer
 * racing with a loaded machine).
 */
async function standIn(name: string, lines: string[], stream: 'stdout' | 'stderr', mode: 'stay' | 'exit1' | 'die-later' | 'silent'): Promise<string> {
  const log = path.join(dir, `${name}.json`);
  const script = `#!${process.execPath}
const fs = require('fs');
const local = process.argv.slice(2);
const port = (local.find((a) => /:\\d+$/.test(a)) || '').split(':').pop();
fs.writeFileSync(${JSON.stringify(log)}, JSON.stringify({ argv: local, pid: process.pid }));
process.on('SIGTERM', () => { fs.appendFileSync(${JSON.stringify(log + '.term')}, 'TERM'); process.exit(0); });
const mode = ${JSON.stringify(mode)};
if (mode !== 'silent') for (const l of ${JSON.stringify(lines)}) process.${stream}.write(l.replace('PORT', port) + '\\n');
if (mode === 'exit1') process.exit(1);
if (mode === 'die-later') setInterval(() => { if (fs.existsSync(${JSON.stringify(log + '.die')})) process.exit(3); }, 20);
setInterval(() => {}, 1000);
`;
  const file = path.join(dir, name);
  await writeFile(file, script);
  await chmod(file, 0o755);
  return log;
}

const env = () => ({ ...process.env, PATH: `${dir}${path.delimiter}/usr/bin:/bin` });

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('output parsers', () => {
  it('finds the trycloudflare URL and nothing else', () => {
    const urls = CLOUDFLARED_LINES.map((l) => parseCloudflaredLine(l).url).filter(Boolean);
    expect(urls).toEqual(['https://seasonal-deck-organisms-sf.trycloudflare.com']);
  });

  it('reads ngrok\'s started-tunnel line and its errors', () => {
    expect(NGROK_LINES.map((l) => parseNgrokLine(l).url).filter(Boolean)).toEqual(['https://1a2b-203-0-113-7.ngrok-free.app']);
    expect(parseNgrokLine(NGROK_AUTH_FAILURE).error).toContain('ERR_NGROK_4018');
    expect(parseNgrokLine('ERROR:  authentication failed').error).toBe('authentication failed');
    expect(parseNgrokLine('{"lvl":"eror","err":"<nil>","msg":"x"}').error).toBeUndefined();
  });

  it('spawns the commands the issue names', () => {
    expect(providerSpec('cloudflared', 'http://127.0.0.1:5000').args).toEqual(['tunnel', '--no-autoupdate', '--url', 'http://127.0.0.1:5000']);
    expect(providerSpec('ngrok', 'http://127.0.0.1:5000').args).toEqual(['http', '127.0.0.1:5000', '--log', 'stdout', '--log-format', 'json']);
  });
});

describe('cloudflared and ngrok with stand-in executables on PATH', () => {
  it('cloudflared: reads the URL, fronts the dev server with an ingress-only gate, and ends the process on close', async () => {
    const log = await standIn('cloudflared', CLOUDFLARED_LINES, 'stderr', 'stay');
    const t = await startTunnel({ provider: 'cloudflared', localUrl: dev.url, logger: captureLogger(), env: env() });
    open.push(t);
    expect(t.publicUrl).toBe('https://seasonal-deck-organisms-sf.trycloudflare.com');
    const { argv, pid } = JSON.parse(await readFile(log, 'utf8')) as { argv: string[]; pid: number };
    expect(argv.slice(0, 3)).toEqual(['tunnel', '--no-autoupdate', '--url']);
    const gate = argv[3];
    expect(gate).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(gate).not.toBe(dev.url);

    // What cloudflared would forward: ingress reaches the dev server byte for byte, the rest is 404.
    const body = Buffer.from('{"id":1,"note":"caf\u00e9"}');
    const ok = await post(`${gate}/v1/webhooks/shopify`, body, { 'x-shopify-hmac-sha256': shopifyHmac(secret, body), 'content-type': 'application/json' });
    expect(ok.status).toBe(200);
    expect(dev.received[0].hmacValid).toBe(true);
    expect(dev.received[0].body.equals(body)).toBe(true);
    for (const p of ['/v1/executions', '/healthz', '/v1/executions/1/replay']) expect((await post(`${gate}${p}`, '{}')).status).toBe(404);
    expect((await fetch(`${gate}/v1/webhooks/shopify`)).status).toBe(405);
    expect(dev.received).toHaveLength(1);

    expect(alive(pid)).toBe(true);
    await t.close();
    open.length = 0;
    await waitFor(() => !alive(pid), 'the stand-in to exit');
    expect(await readFile(`${log}.term`, 'utf8')).toBe('TERM');
    await expect(fetch(`${gate}/v1/run/event`, { method: 'POST', body: '{}' })).rejects.toThrow();
  });

  it('ngrok: reads the JSON log\'s started-tunnel url and points ngrok at host:port', async () => {
    const log = await standIn('ngrok', NGROK_LINES, 'stdout', 'stay');
    const t = await startTunnel({ provider: 'ngrok', localUrl: dev.url, logger: captureLogger(), env: env() });
    open.push(t);
    expect(t.publicUrl).toBe('https://1a2b-203-0-113-7.ngrok-free.app');
    const { argv } = JSON.parse(await readFile(log, 'utf8')) as { argv: string[] };
    expect(argv[0]).toBe('http');
    expect(argv[1]).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(argv.slice(2)).toEqual(['--log', 'stdout', '--log-format', 'json']);
    expect((await post(`http://${argv[1]}/v1/run/event`, '{"event":"x"}')).status).toBe(200);
  });

  it('a missing binary is a clear error with an install hint', async () => {
    for (const provider of ['cloudflared', 'ngrok'] as const) {
      const err = await startTunnel({ provider, localUrl: dev.url, logger: captureLogger(), env: env() }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'E_TUNNEL_MISSING', message: `${provider} is not installed (not found on PATH)` });
      expect((err as { hint: string }).hint).toMatch(/Install/);
    }
  });

  it('ngrok failing before a URL (no authtoken) reports ngrok\'s own error', async () => {
    await standIn('ngrok', [NGROK_AUTH_FAILURE], 'stdout', 'exit1');
    const err = await startTunnel({ provider: 'ngrok', localUrl: dev.url, logger: captureLogger(), env: env() }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_TUNNEL_START' });
    expect((err as Error).message).toContain('ERR_NGROK_4018');
    expect((err as { hint: string }).hint).toContain('ngrok config add-authtoken');
  });

  it('cloudflared exiting early names the exit code and its last output', async () => {
    await standIn('cloudflared', ['2026-11-29T09:00:00Z ERR failed to request quick Tunnel: 429 Too Many Requests'], 'stderr', 'exit1');
    const err = await startTunnel({ provider: 'cloudflared', localUrl: dev.url, logger: captureLogger(), env: env() }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_TUNNEL_START' });
    expect((err as Error).message).toMatch(/exited \(code 1\) before printing a public URL/);
    expect((err as Error).message).toContain('429 Too Many Requests');
  });

  it("cloudflared's own error lines naming api.trycloudflare.com are not the public URL; the exit is E_TUNNEL_START with them", async () => {
    const lines = [
      '2026-11-29T09:00:00Z INF Requesting new quick Tunnel on trycloudflare.com...',
      '2026-11-29T09:00:01Z ERR Error unmarshaling QuickTunnel response: error code: 1015 error="invalid character \'e\' looking for beginning of value" status_code="429 Too Many Requests"',
      '2026-11-29T09:00:01Z ERR failed to request quick Tunnel: Post "https://api.trycloudflare.com/tunnel": dial tcp: lookup api.trycloudflare.com: no such host',
    ];
    for (const l of lines) expect(parseCloudflaredLine(l)).toEqual({});
    expect(parseCloudflaredLine('2026-11-29T09:00:01Z INF |  https://api.trycloudflare.com  |')).toEqual({});
    await standIn('cloudflared', lines, 'stderr', 'exit1');
    const err = await startTunnel({ provider: 'cloudflared', localUrl: dev.url, logger: captureLogger(), env: env() }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_TUNNEL_START' });
    expect((err as Error).message).toMatch(/exited \(code 1\) before printing a public URL/);
    expect((err as Error).message).toContain('no such host');
  });

  it('shows progress while waiting for the URL', async () => {
    await standIn('cloudflared', [], 'stderr', 'silent');
    const logger = captureLogger();
    const err = await startTunnel({ provider: 'cloudflared', localUrl: dev.url, logger, env: env(), startTimeoutMs: 6_500 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_TUNNEL_START' });
    expect(logger.lines.some((l) => /waiting for cloudflared to print its public URL \(5s\)/.test(l))).toBe(true);
  });

  it('times out when no URL is printed, and kills the process', async () => {
    const log = await standIn('cloudflared', [], 'stderr', 'silent');
    const err = await startTunnel({ provider: 'cloudflared', localUrl: dev.url, logger: captureLogger(), env: env(), startTimeoutMs: 2_000 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_TUNNEL_START' });
    expect((err as Error).message).toContain('printed no public URL');
    const { pid } = JSON.parse(await readFile(log, 'utf8')) as { pid: number };
    await waitFor(() => !alive(pid), 'the silent stand-in to be killed');
  });

  it('says so when the program dies after the tunnel was up', async () => {
    const log = await standIn('cloudflared', CLOUDFLARED_LINES, 'stderr', 'die-later');
    const logger = captureLogger();
    const t = await startTunnel({ provider: 'cloudflared', localUrl: dev.url, logger, env: env() });
    open.push(t);
    const exits: unknown[] = [];
    t.on?.('exit', (e) => exits.push(e));
    await writeFile(`${log}.die`, ''); // now, with the listener in place
    await waitFor(() => exits.length === 1, 'exit event');
    expect(exits[0]).toMatchObject({ exitCode: 3 });
    expect(logger.lines.some((l) => l.startsWith('warn cloudflared exited (code 3)'))).toBe(true);
  });
});
