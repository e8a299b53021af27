/**
 * `alloy serve` on PostgreSQL: the seed flow in-process over a PgServeState and against the
 * built binary with --database (`npm run build` first), `alloy serve migrate`, and the
 * operator errors of --database.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { openPgState } from '../../src/serve/state/pg-state.js';
import { LocalStore } from '../../src/store/lib.js';
import { assertPgReachable, describePg, dropSchemas, freshSchema, PG_URL } from '../helpers/pg.js';
import { runAlloy, spawnServe } from './binary.js';
import { startTestServe, tempDir } from './helpers.js';
import { seedFlow } from './seed-flow.js';

describePg('alloy serve on PostgreSQL', () => {
  beforeAll(() => assertPgReachable());
  afterAll(() => dropSchemas());

  seedFlow('in-process, PostgreSQL', async ({ settings, env }) => {
    const state = await openPgState({ url: PG_URL, schema: freshSchema('seed'), poolSize: 4 });
    const s = await startTestServe({ settings, env, state });
    return { url: s.url, admin: s.admin, store: s.store, key: s.key, close: s.close };
  });

  seedFlow('built binary, --database', async ({ settings, env }) => {
    const project = tempDir('alloy-serve-pg-project-');
    writeFileSync(path.join(project, 'alloy.config.yaml'), stringify({ apiVersion: 'alloy/v1', kind: 'Project', name: 'serve-pg-e2e', apps: settings, egress: { allow: ['127.0.0.1'] } }));
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
    const badUrl = await runAlloy(['serve', 'migrate', '--database', 'mysql://x@y/z'], cwd, {});
    expect(badUrl.code).toBe(2);
    expect(badUrl.stderr).toMatch(/--database takes a postgres:\/\/ URL/);
    const down = await runAlloy(['serve', 'keys', 'list', '--database', 'postgres://alloy:hunter2-secret@127.0.0.1:1/alloy'], cwd, { ALLOY_MASTER_KEY: Buffer.alloc(32, 1).toString('base64') });
    expect(down.code).toBe(2);
    expect(down.stderr).toMatch(/cannot open the PostgreSQL state at postgres:\/\/alloy:\*\*\*@127\.0\.0\.1:1\/alloy/);
    expect(down.stderr).not.toContain('hunter2-secret');
    expect(down.stderr).not.toMatch(/\n\s+at /);
  });
});
