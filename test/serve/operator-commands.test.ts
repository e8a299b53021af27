/** `alloy users`, `install`, `installations`, `upgrade`, `executions --remote` against a running serve, with --json. */
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { stringify } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { startFakeShopify } from '../../src/testing/fake-shopify.js';
import { cli } from '../store/helpers.js';
import { call, cleanup, exampleSource, releaseAndPublish, startTestServe, tempDir, waitFor } from './helpers.js';

afterAll(cleanup);

describe('operator commands', () => {
  it('manage users and installations, upgrade, and list executions of a remote serve', async () => {
    const fake = await startFakeShopify();
    const serve = await startTestServe({ settings: { shopify: { baseUrl: fake.url } } });
    try {
      await releaseAndPublish(serve.store, exampleSource());
      const project = tempDir('alloy-ops-');
      writeFileSync(path.join(project, 'alloy.config.yaml'), stringify({ apiVersion: 'alloy/v1', kind: 'Project', name: 'ops', remotes: { prod: { url: serve.url } } }));
      const env = { ALLOY_API_KEY: serve.admin };
      const run = (args: string[], e: Record<string, string> = env) => cli(project, [...args, '--remote', 'prod'], e);

      expect((await run(['users', 'create', 'acme-1', '--json'])).json()).toMatchObject({ ok: true, user: { id: 'acme-1' } });
      const users = await run(['users', '--json']);
      expect(users.json().users.map((u: { id: string }) => u.id)).toEqual(['acme-1']);
      const noKey = await run(['users'], {});
      expect(noKey.code).toBe(2);
      expect(noKey.stderr).toContain('ALLOY_API_KEY');
      const badKey = await run(['users'], { ALLOY_API_KEY: 'alk_admin_wrong' });
      expect(badKey.code).toBe(1);
      expect(badKey.stderr).toContain('E_UNAUTHORIZED');

      const cred = await call(serve.url, 'POST', '/v1/users/acme-1/credentials', { token: serve.admin, body: { app: 'shopify', kind: 'token', account: fake.shop, fields: { accessToken: fake.accessToken } } });
      const installed = await run(['install', 'shopify-sync', '--user', 'acme-1', '--credential', `shopify=${cred.body.id}`, '--json']);
      expect(installed.code).toBe(0);
      expect(installed.json().installation).toMatchObject({ integration: 'shopify-sync', version: 1, userId: 'acme-1' });
      // `--config __proto__=x` was dropped on the client (assignment set the prototype), so the
      // install went through without it; now the server sees the name and refuses it (a
      // validation error: exit 2, as a server's 400 or 422 is for every operator command).
      const proto = await run(['install', 'shopify-sync', '--user', 'acme-1', '--credential', `shopify=${cred.body.id}`, '--config', '__proto__=x']);
      expect([proto.code, proto.stderr]).toEqual([2, expect.stringContaining('E_CONFIG_INVALID')]);
      expect((await run(['install', 'shopify-sync', '--user', 'acme-1', '--credential', 'shopify'])).stderr).toContain('--credential shopify=cred_');
      const human = await run(['installations']);
      expect(human.stdout).toContain('shopify-sync@1  active');

      await releaseAndPublish(serve.store, exampleSource((_d, w) => ((w.get('create-order')!.steps[1] as { with: Record<string, unknown> }).with.v = 2)));
      expect((await run(['upgrade', 'shopify-sync', '--all', '--json'])).json()).toMatchObject({ ok: true, version: 2, upgraded: [installed.json().installation.id] });
      expect((await run(['upgrade', 'shopify-sync'])).code).toBe(2);
      expect((await run(['installations', '--json'])).json().installations[0].version).toBe(2);

      const ev = await call(serve.url, 'POST', '/v1/run/event', { token: serve.admin, body: { event: 'acme.order.requested', userId: 'acme-1', data: { orderId: '1', email: 'a@example.com', currency: 'EUR', lineItems: [{ title: 'x', quantity: 1, price: 1 }] } } });
      await waitFor(async () => (await call(serve.url, 'GET', `/v1/executions/${ev.body.executionIds[0]}`, { token: serve.admin })).body.status === 'succeeded', 'the execution');
      const list = await run(['executions', '--user', 'acme-1', '--json']);
      expect(list.json().executions.map((e: { id: string; version: number }) => [e.id, e.version])).toEqual([[ev.body.executionIds[0], 2]]);
      const one = await run(['executions', ev.body.executionIds[0]]);
      expect(one.stdout).toContain('succeeded');
      expect((await run(['users', 'delete', 'acme-1', '--json'])).json()).toEqual({ ok: true, deleted: 'acme-1' });
    } finally {
      await serve.close();
      await fake.close();
    }
  });
});

describe('serve keys create under a process environment', () => {
  it('does not take ALLOY_SERVE_ROLE=worker (a serve role) for the key\'s role, and takes a key role from it', async () => {
    const data = tempDir('alloy-keys-env-');
    const env = { ALLOY_MASTER_KEY: Buffer.alloc(32, 7).toString('base64') };
    const worker = await cli(data, ['serve', 'keys', 'create', '--data', data, '--json'], { ...env, ALLOY_SERVE_ROLE: 'worker' });
    expect(worker.code).toBe(2);
    expect(worker.stdout + worker.stderr).toContain('name the key\'s role');
    const fromEnv = await cli(data, ['serve', 'keys', 'create', '--data', data, '--json'], { ...env, ALLOY_SERVE_ROLE: 'read' });
    expect(fromEnv.code).toBe(0);
    expect(fromEnv.json()).toMatchObject({ ok: true, role: 'read' });
    const flag = await cli(data, ['serve', 'keys', 'create', '--role', 'ingest', '--data', data, '--json'], { ...env, ALLOY_SERVE_ROLE: 'worker' });
    expect(flag.json()).toMatchObject({ ok: true, role: 'ingest' });
  });
});

describe('serve keys delete', () => {
  it('revokes a key: the running server answers 401 for it at once; an unknown id is E_NOT_FOUND, a pasted key is refused without being echoed', async () => {
    const serve = await startTestServe();
    const project = tempDir('alloy-ops-keys-');
    writeFileSync(path.join(project, 'alloy.config.yaml'), stringify({ apiVersion: 'alloy/v1', kind: 'Project', name: 'ops' }));
    const env = { ALLOY_MASTER_KEY: Buffer.alloc(32, 7).toString('base64') };
    try {
      const read = await serve.key('read');
      expect((await call(serve.url, 'GET', '/v1/users', { token: read })).status).toBe(200);
      const listed = await cli(project, ['serve', 'keys', 'list', '--data', serve.dataDir, '--json'], env);
      const id = (listed.json() as { keys: { id: string; role: string }[] }).keys.find((k) => k.role === 'read')!.id;
      const del = await cli(project, ['serve', 'keys', 'delete', id, '--data', serve.dataDir], env);
      expect(del.code).toBe(0);
      expect((await call(serve.url, 'GET', '/v1/users', { token: read })).status).toBe(401);
      expect((await call(serve.url, 'GET', '/v1/users', { token: serve.admin })).status).toBe(200);
      const again = await cli(project, ['serve', 'keys', 'delete', id, '--data', serve.dataDir], env);
      expect([again.code, again.stderr]).toEqual([1, expect.stringContaining('E_NOT_FOUND')]);
      const pasted = await cli(project, ['serve', 'keys', 'delete', serve.admin, '--data', serve.dataDir], env);
      expect(pasted.code).toBe(2);
      expect(pasted.stderr + pasted.stdout).not.toContain(serve.admin);
      // Pasted with a space before it (it was looked up, and echoed in E_NOT_FOUND).
      const spaced = await cli(project, ['serve', 'keys', 'delete', ` ${serve.admin}`, '--data', serve.dataDir], env);
      expect(spaced.code).toBe(2);
      expect(spaced.stderr + spaced.stdout).not.toContain(serve.admin.slice(8));
    } finally {
      await serve.close();
    }
  });
});

describe('which serve: --url and remotes', () => {
  it('a URL without a scheme, of another scheme, or with credentials is a usage error naming the fix, not "cannot reach … is alloy serve running?"', async () => {
    const project = tempDir('alloy-ops-url-');
    writeFileSync(path.join(project, 'alloy.config.yaml'), stringify({ apiVersion: 'alloy/v1', kind: 'Project', name: 'ops', remotes: { bare: { url: '127.0.0.1:4200' } } }));
    const env = { ALLOY_API_KEY: 'alk_admin_x' };
    const bare = await cli(project, ['users', '--url', '127.0.0.1:4200'], env);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toContain('E_BAD_URL');
    expect(bare.stderr).toContain('http://127.0.0.1:4200');
    expect(bare.stderr).not.toContain('E_REMOTE_UNREACHABLE');
    expect((await cli(project, ['installations', '--url', 'ftp://host'], env)).stderr).toContain('E_BAD_URL');
    const creds = await cli(project, ['users', '--url', 'http://ops:hunter2@127.0.0.1:4200'], env);
    expect(creds.code).toBe(2);
    expect(creds.stderr).toContain('E_BAD_URL');
    expect(creds.stderr).not.toContain('hunter2');
    const remote = await cli(project, ['users', '--remote', 'bare'], env);
    expect(remote.code).toBe(2);
    expect(remote.stderr).toContain('the url of remote "bare"');
  });

  it('a URL with a query is E_BAD_URL, and a server answering 200 with HTML is E_REMOTE_NOT_SERVE (both were "internal error … reading \'items\'")', async () => {
    const project = tempDir('alloy-ops-url-');
    writeFileSync(path.join(project, 'alloy.config.yaml'), stringify({ apiVersion: 'alloy/v1', kind: 'Project', name: 'ops' }));
    const env = { ALLOY_API_KEY: 'alk_admin_x' };
    const query = await cli(project, ['users', '--url', 'http://127.0.0.1:1/?x'], env);
    expect([query.code, query.stderr]).toEqual([2, expect.stringContaining('E_BAD_URL')]);
    const html = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><p>sign in</p>'));
    await new Promise<void>((resolve) => html.listen(0, '127.0.0.1', resolve));
    try {
      const r = await cli(project, ['users', '--url', `http://127.0.0.1:${(html.address() as AddressInfo).port}`], env);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('E_REMOTE_NOT_SERVE');
      expect(r.stderr).toContain('text/html');
      expect(r.stderr).not.toContain('internal error');
    } finally {
      html.close();
    }
  });
});

describe('serve --data naming a file', () => {
  it('is E_SERVE_DATA, exit 2, for serve and serve keys (it was "internal error ENOTDIR … a bug in alloy")', async () => {
    const dir = tempDir('alloy-data-file-');
    const file = path.join(dir, 'not-a-folder');
    writeFileSync(file, 'x');
    for (const args of [['serve', '--port', '0', '--store', path.join(dir, 'store')], ['serve', 'keys', 'create', '--role', 'admin'], ['serve', 'keys', 'list']]) {
      const r = await cli(dir, [...args, '--data', file], {});
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toContain('E_SERVE_DATA');
      expect(r.stderr).not.toContain('internal error');
    }
  });
});
