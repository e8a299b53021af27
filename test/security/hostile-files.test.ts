/**
 * Reads of files a cloned project commits: a definition file or `.env` that is a named pipe,
 * a link to /dev/zero, or a folder. Before, `alloy validate` re-read a refused file in full
 * for its code frame (a pipe blocked it for ever, /dev/zero grew without end), and the
 * `.env` readers of `alloy run`, `alloy dev` and the credentials blocked, ran out of memory,
 * or said "internal error" on a folder. Now: a located E_FILE_READ, or E_ENV_FILE, at once.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { STACK_LINE, copyExample, runBin, runInProcess } from '../helpers/cli.js';
import { readEnvFile } from '../../src/core/env-file.js';
import { filesystemKeepsModes } from '../../src/core/safe-fs.js';
import { loadOrCreateIngressSecret, readDevInfo, readIngressSecret } from '../../src/server/dev-state.js';
import { resolveConnectionWithSources } from '../../src/connectors/credentials.js';

const posix = process.platform !== 'win32';
let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await copyExample()));
afterEach(async () => cleanup());

const mkfifo = (file: string) => execFileSync('mkfifo', [file]);
const WORKFLOWS = 'integrations/shopify-sync/workflows';

describe.skipIf(!posix)('hostile files in a cloned project', () => {
  it('alloy validate: a workflow file that is a named pipe or a link to /dev/zero is a located error, not a hang', async () => {
    mkfifo(path.join(dir, WORKFLOWS, 'pipe.yaml'));
    symlinkSync('/dev/zero', path.join(dir, WORKFLOWS, 'zero.yaml'));
    const started = Date.now();
    const r = await runBin(['validate'], { cwd: dir, timeout: 20_000 });
    expect(r.code).toBe(2);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(r.stdout).toMatch(/workflows\/pipe\.yaml:1:1\s+error\s+E_FILE_READ/);
    expect(r.stdout).toMatch(/workflows\/zero\.yaml:1:1\s+error\s+E_FILE_READ/);
    expect(r.stderr).not.toContain('internal error');
  }, 30_000);

  it('alloy.config.yaml as a named pipe or a link to /dev/zero: E_CONFIG_LOAD at once (cosmiconfig read it whole)', async () => {
    const config = path.join(dir, 'alloy.config.yaml');
    rmSync(config);
    mkfifo(config);
    const r = await runBin(['validate'], { cwd: dir, timeout: 20_000 });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('E_CONFIG_LOAD');
    expect(r.stderr).toContain('not a regular file');
    rmSync(config);
    symlinkSync('/dev/zero', config);
    const s = await runInProcess(['status'], { cwd: dir });
    expect(s.code).toBe(2);
    expect(s.stderr).toContain('E_CONFIG_LOAD');
  }, 30_000);

  it('the pre-check refuses only what blocks a read, where cosmiconfig looks: a folder named .alloyrc is skipped, nothing above a package.json is looked at', async () => {
    const { findConfig } = await import('../../src/core/find-config.js');
    mkdirSync(path.join(dir, '.alloyrc'));
    expect((await findConfig(dir))?.filepath).toBe(path.join(dir, 'alloy.config.yaml'));
    // A project without an alloy config under a parent with a pipe where a config could be:
    // its package.json is where cosmiconfig stops, so is the pre-check.
    const inner = path.join(dir, 'inner');
    mkdirSync(inner);
    writeFileSync(path.join(inner, 'package.json'), '{"name":"inner"}');
    rmSync(path.join(dir, 'alloy.config.yaml'));
    mkfifo(path.join(dir, 'alloy.config.yaml'));
    expect(await findConfig(inner)).toBeUndefined();
  });

  it('alloy test: a fixture that is a named pipe fails its tests, it does not block the run', async () => {
    const fixture = path.join(dir, 'integrations/shopify-sync/fixtures/acme-order-requested.json');
    rmSync(fixture);
    mkfifo(fixture);
    const r = await runBin(['test'], { cwd: dir, timeout: 20_000 });
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toContain('cannot read fixture acme-order-requested.json: not a regular file');
  }, 30_000);

  for (const kind of ['a named pipe', 'a link to /dev/zero', 'a folder'] as const) {
    it(`.env as ${kind}: alloy run says E_ENV_FILE at once (exit 1), no hang, no internal error`, async () => {
      const env = path.join(dir, '.env');
      if (kind === 'a named pipe') mkfifo(env);
      else if (kind === 'a link to /dev/zero') symlinkSync('/dev/zero', env);
      else mkdirSync(env);
      const r = await runBin(['run', 'shopify-sync/create-order', '--event', '@integrations/shopify-sync/fixtures/acme-order-requested.json'], { cwd: dir, timeout: 20_000 });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('E_ENV_FILE');
      expect(r.stderr).toContain('.env');
      expect(r.stderr).not.toContain('internal error');
      expect(r.stderr).not.toMatch(STACK_LINE);
    }, 30_000);
  }

  it('alloy dev refuses to start on a .env pipe with E_ENV_FILE instead of waiting for a writer', async () => {
    mkfifo(path.join(dir, '.env'));
    const r = await runBin(['dev', '--port', '0'], { cwd: dir, timeout: 20_000 });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('E_ENV_FILE');
  }, 30_000);

  it('the credential resolver (users/<id>.env too) and readEnvFile: pipes and devices refused, a linked regular .env still read', async () => {
    mkdirSync(path.join(dir, 'users'));
    mkfifo(path.join(dir, 'users', 'u1.env'));
    const manifest = { name: 'shopify', connection: { shop: { env: 'SHOPIFY_SHOP', required: true } } } as never;
    await expect(resolveConnectionWithSources({ manifest, userId: 'u1', env: {}, projectRoot: dir })).rejects.toMatchObject({ code: 'E_ENV_FILE' });
    await expect(readEnvFile('/dev/zero')).rejects.toMatchObject({ code: 'E_ENV_FILE' });
    expect(await readEnvFile(path.join(dir, 'missing.env'))).toBeUndefined();
    const real = path.join(dir, 'real.env');
    (await import('node:fs')).writeFileSync(real, 'A=1\nB="two"\n');
    symlinkSync(real, path.join(dir, 'linked.env'));
    expect(await readEnvFile(path.join(dir, 'linked.env'))).toEqual({ A: '1', B: 'two' });
    const r = await runInProcess(['validate'], { cwd: dir });
    expect(r.code).toBe(0);
  });

  it('a committed .alloy/ingress-secret (0644 after checkout) is not used: dev replaces it, alloy emit does not sign with it', async () => {
    const alloy = path.join(dir, '.alloy');
    mkdirSync(alloy, { mode: 0o700 });
    const known = `whsec_${Buffer.alloc(32, 1).toString('base64')}`;
    writeFileSync(path.join(alloy, 'ingress-secret'), `${known}\n`, { mode: 0o644 });
    chmodSync(path.join(alloy, 'ingress-secret'), 0o644);
    expect(readIngressSecret(dir)).toBeUndefined();
    const made = loadOrCreateIngressSecret(dir);
    expect(made.secret).not.toBe(known);
    expect(made.created).toBe(true);
    // Said, not silent: a sender configured with the old secret must be updated.
    expect(made.replaced).toMatch(/ingress-secret was not written by alloy for this user \(mode 644\)/);
    expect(statSync(path.join(alloy, 'ingress-secret')).mode & 0o777).toBe(0o600);
    // One alloy wrote is kept, and read by emit.
    expect(loadOrCreateIngressSecret(dir)).toEqual({ secret: made.secret, created: false });
    // This filesystem keeps modes (the probe leaves nothing behind): the check is on here.
    expect(filesystemKeepsModes(alloy)).toBe(true);
    expect(readdirSync(alloy).filter((f) => f.startsWith('.mode-probe'))).toEqual([]);
    expect(readIngressSecret(dir)).toBe(made.secret);
  });

  it('a committed .alloy/dev.json naming another server is not trusted: alloy emit sends it nothing', async () => {
    const seen: string[] = [];
    const server = http.createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true, pid: 1, version: '0.1.0' }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const alloy = path.join(dir, '.alloy');
      mkdirSync(alloy, { mode: 0o700 });
      writeFileSync(path.join(alloy, 'dev.json'), JSON.stringify({ url, pid: 1, startedAt: new Date().toISOString() }), { mode: 0o644 });
      chmodSync(path.join(alloy, 'dev.json'), 0o644);
      const r = await runInProcess(['emit', 'acme.order.requested', '-d', '@integrations/shopify-sync/fixtures/acme-order-requested.json'], { cwd: dir });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('E_DEV_NOT_RUNNING');
      expect(seen).toEqual([]);
      // The same file as alloy dev writes it (0600) is followed.
      chmodSync(path.join(alloy, 'dev.json'), 0o600);
      expect(readDevInfo(dir)?.url).toBe(url);
    } finally {
      server.close();
    }
  });
});
