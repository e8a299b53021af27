/**
 * `alloy serve` on PostgreSQL: the seed flow in-process over a PgServeState and against the
 * built binary with --database (`npm run build` first), `alloy serve migrate`, and the
 * operator errors of --database.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { openPgState } from '../../src/serve/state/pg-state.js';
import { createLocalQueue } from '../../src/serve/queue/local-queue.js';
import { LocalStore, openStore } from '../../src/store/lib.js';
import { assertPgReachable, describePg, dropSchemas, freshSchema, PG_URL } from '../helpers/pg.js';
import { runAlloy, spawnServe } from './binary.js';
import { call, exampleSource, releaseAndPublish, startTestServe, tempDir } from './helpers.js';
import { seedFlow } from './seed-flow.js';

describePg('alloy serve on PostgreSQL', () => {
  beforeAll(() => assertPgReachable());
  afterAll(() => dropSchemas());

  seedFlow('in-process, PostgreSQL', async ({ settings, env, oauthRedirectOrigins }) => {
    const state = await openPgState({ url: PG_URL, schema: freshSchema('seed'), poolSize: 4 });
    const s = await startTestServe({ settings, env, state, oauthRedirectOrigins });
    return { url: s.url, admin: s.admin, store: s.store, key: s.key, close: s.close };
  });

  seedFlow('built binary, --database', async ({ settings, env, oauthRedirectOrigins }) => {
    const project = tempDir('alloy-serve-pg-project-');
    writeFileSync(path.join(project, 'alloy.config.yaml'), stringify({ apiVersion: 'alloy/v1', kind: 'Project', name: 'serve-pg-e2e', apps: settings, egress: { allow: ['127.0.0.1'] }, serve: { oauth: { redirectOrigins: oauthRedirectOrigins } } }));
    const storeDir = path.join(project, 'store');
    const db = ['--database', PG_URL, '--schema', freshSchema('seedbin')];
    const fullEnv = { ...env, ALLOY_MASTER_KEY: Buffer.alloc(32, 1).toString('base64') };
    const key = async (role: string) => {
      const r = await runAlloy(['serve', 'keys', 'create', '--role', role, ...db, '--json'], project, fullEnv);
      if (r.code !== 0) throw new Error(`keys create failed: ${r.stderr}`);
      return JSON.parse(r.stdout).key as string;
    };
    const admin = await key('admin');
    const store = new LocalStore(storeDir);
    await store.init();
    const served = await spawnServe([...db, '--store', storeDir], project, fullEnv);
    return { url: served.url, admin, store, key, close: () => served.stop() };
  }, 90_000);

  it('NUL in an id, a cursor, a filter or a body field is a 400, not a 500 from PostgreSQL; the database gone is a 503', async () => {
    const logged: string[] = [];
    const state = await openPgState({ url: PG_URL, schema: freshSchema('nul'), poolSize: 2 });
    // The in-process queue: this test closes the state under a running server to take the
    // database away, and pg-boss's session would hold a pooled connection open through that.
    const s = await startTestServe({ state, queue: createLocalQueue, log: (message, fields) => logged.push(`${message} ${JSON.stringify(fields)}`) });
    try {
      const admin = s.admin;
      await releaseAndPublish(s.store, exampleSource());
      expect((await call(s.url, 'POST', '/v1/users', { token: admin, body: { id: 'u1' } })).status).toBe(201);
      for (const p of ['/v1/users/u1%00', '/v1/users?cursor=%00', '/v1/executions?workflow=a%00', '/v1/executions/ex%00', '/v1/installations?userId=u%00']) {
        const r = await call(s.url, 'GET', p, { token: admin });
        expect([p, r.status, (r.body as { error: { code: string } }).error.code]).toEqual([p, 400, 'E_BAD_REQUEST']);
      }
      const bodies: [string, unknown][] = [
        ['/v1/run/event', { event: 'acme.order.requested', userId: 'u\u0000' }],
        ['/v1/users/u1/credentials', { app: 'shopify', kind: 'token', account: 'x\u0000.myshopify.com', fields: { accessToken: 'a' } }],
        ['/v1/installations', { userId: 'u1', integration: 'shopify-sync', credentials: { shopify: 'cred\u0000' } }],
      ];
      for (const [p, body] of bodies) expect([p, (await call(s.url, 'POST', p, { token: admin, body })).status]).toEqual([p, p === '/v1/installations' ? 422 : 400]);
      expect(logged.filter((l) => l.startsWith('internal error'))).toEqual([]);
      // The database gone: 503 with Retry-After (not a 500 'internal error'), and the log says so.
      await state.close();
      const down = await fetch(`${s.url}/v1/users/u1`, { headers: { authorization: `Bearer ${admin}` } });
      expect([down.status, down.headers.get('retry-after')]).toEqual([503, '5']);
      expect(((await down.json()) as { error: { code: string } }).error.code).toBe('E_UNAVAILABLE');
      expect(logged.some((l) => l.startsWith('state database unavailable') && l.includes('GET /v1/users/:userId'))).toBe(true);
    } finally {
      await s.server.close().catch(() => {});
    }
  });

  it('alloy serve migrate applies the migrations once; a second run finds nothing to do', async () => {
    const cwd = tempDir('alloy-serve-migrate-');
    const schema = freshSchema('migrate');
    const first = await runAlloy(['serve', 'migrate', '--database', PG_URL, '--schema', schema, '--json'], cwd, {});
    expect(first.code, first.stderr).toBe(0);
    const report = JSON.parse(first.stdout);
    expect(report.applied.map((m: { id: number }) => m.id)).toContain(1);
    const again = await runAlloy(['serve', 'migrate', '--database', PG_URL, '--schema', schema], cwd, {});
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(new RegExp(`schema ${schema}: up to date at migration ${report.current}`));
  });

  it('--database without a shared master key, a bad URL, an unreachable server: exit 2 with a hint, no stack, no password', async () => {
    const cwd = tempDir('alloy-serve-pg-errors-');
    const noKey = await runAlloy(['serve', 'keys', 'list', '--database', PG_URL, '--schema', freshSchema('nokey')], cwd, {});
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toMatch(/every serve process needs the same master key/);
    const schemaAlone = await runAlloy(['serve', 'keys', 'list', '--data', cwd, '--schema', 'x'], cwd, {});
    expect(schemaAlone.code).toBe(2);
    expect(schemaAlone.stderr).toMatch(/--schema applies to PostgreSQL only/);
    const badUrl = await runAlloy(['serve', 'migrate', '--database', 'mysql://x@y/z'], cwd, {});
    expect(badUrl.code).toBe(2);
    expect(badUrl.stderr).toMatch(/--database takes a postgres:\/\/ URL/);
    const down = await runAlloy(['serve', 'keys', 'list', '--database', 'postgres://alloy:hunter2-secret@127.0.0.1:1/alloy'], cwd, { ALLOY_MASTER_KEY: Buffer.alloc(32, 1).toString('base64') });
    // A server that cannot be reached is a failure (exit 1), not a usage mistake.
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/E_UNAVAILABLE cannot open the PostgreSQL state at postgres:\/\/alloy:\*\*\*@127\.0\.0\.1:1\/alloy/);
    expect(down.stderr).not.toContain('hunter2-secret');
    expect(down.stderr).not.toMatch(/\n\s+at /);
    // `serve migrate` reaches the database without opening the state: the same clear error, not "internal error".
    const migrateDown = await runAlloy(['serve', 'migrate', '--database', 'postgres://alloy:hunter2-secret@127.0.0.1:1/alloy'], cwd, {});
    expect(migrateDown.code).toBe(1);
    expect(migrateDown.stderr).toMatch(/cannot open the PostgreSQL state at postgres:\/\/alloy:\*\*\*@127\.0\.0\.1:1\/alloy/);
    expect(migrateDown.stderr).not.toMatch(/internal error|bug in alloy|hunter2-secret/);
  });
});

describePg('two alloy serve processes over one database', () => {
  beforeAll(() => assertPgReachable());
  afterAll(() => dropSchemas());

  it('a start that fails after listening (the queue cannot start) exits 1 instead of staying up', async () => {
    const cwd = tempDir('alloy-serve-pg-failstart-');
    const schema = freshSchema('failstart');
    const env = { ALLOY_MASTER_KEY: Buffer.alloc(32, 3).toString('base64') };
    expect((await runAlloy(['serve', 'migrate', '--database', PG_URL, '--schema', schema], cwd, {})).code).toBe(0);
    // A table named as pg-boss's but not its: pg-boss's start fails reading its version.
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    await client.query(`CREATE TABLE ${schema}.version (x int)`);
    await client.end();
    // Before, the HTTP server, pg-boss's timers and the pool kept the process up: this never resolved.
    const r = await runAlloy(['serve', '--port', '0', '--json', '--database', PG_URL, '--schema', schema], cwd, env);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).ok).toBe(false);
  }, 60_000);

  it('share one store and one state: a version published through one is installed through the other', async () => {
    const cwd = tempDir('alloy-serve-pg-two-');
    const db = ['--database', PG_URL, '--schema', freshSchema('two')];
    const env = { ALLOY_MASTER_KEY: Buffer.alloc(32, 2).toString('base64'), ALLOY_SERVE_TOKENS: 'write:store-write-token-1234567890' };
    const created = await runAlloy(['serve', 'keys', 'create', '--role', 'admin', ...db, '--json'], cwd, env);
    expect(created.code, created.stderr).toBe(0);
    const admin = JSON.parse(created.stdout).key as string;
    // Both start at once on a new schema: the migrations run once between them.
    // One of them is given a password in its URL (trust auth ignores it): it must never be printed.
    const u = new URL(PG_URL);
    u.password = 'pw-must-not-show';
    const withPassword = u.toString();
    // Both must come up (a failed start once left one process up without its banner: the test hung).
    const started = await Promise.allSettled([spawnServe(db, cwd, env), spawnServe(['--database', withPassword, ...db.slice(2)], cwd, env)]);
    const failed = started.filter((s) => s.status === 'rejected').map((s) => String((s as PromiseRejectedResult).reason));
    if (failed.length) await Promise.all(started.map((s) => (s.status === 'fulfilled' ? s.value.stop() : undefined)));
    expect(failed).toEqual([]);
    const [a, b] = started.map((s) => (s as PromiseFulfilledResult<Awaited<ReturnType<typeof spawnServe>>>).value);
    let bOut = b.first;
    b.child.stdout!.on('data', (d) => (bOut += d));
    b.child.stderr!.on('data', (d) => (bOut += d));
    try {
      const remote = await openStore({ root: cwd, store: a.url, env: { ALLOY_TOKEN: 'store-write-token-1234567890' } });
      await releaseAndPublish(remote, exampleSource());
      await remote.close();
      const published = await fetch(`${b.url}/v1/store/integrations/shopify-sync/published`, { headers: { authorization: 'Bearer store-write-token-1234567890' } });
      expect((await published.json()).published.version).toBe(1);
      expect((await call(a.url, 'POST', '/v1/users', { token: admin, body: { id: 'u-two' } })).status).toBe(201);
      const inst = await call(b.url, 'POST', '/v1/installations', { token: admin, body: { userId: 'u-two', integration: 'shopify-sync' } });
      expect(inst.status, JSON.stringify(inst.body)).toBe(201);
      expect(inst.body.version).toBe(1);
      expect((await call(a.url, 'GET', `/v1/installations/${inst.body.id}`, { token: admin })).body.userId).toBe('u-two');
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
    expect(JSON.parse(b.first).store).toMatch(/^database postgres:\/\/postgres:\*\*\*@/);
    expect(bOut).not.toContain('pw-must-not-show');
  }, 60_000);
});
