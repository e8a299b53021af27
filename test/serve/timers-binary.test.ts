/**
 * A schedule fires once per installation per tick across three `alloy serve` processes (the
 * built binary, `npm run build` first) on one PostgreSQL database: every process arms the same
 * `every: 1s` schedule for two installations, and the state's atomic ingest stores each tick
 * once. Skipped (with one line) where no PostgreSQL answers, unless ALLOY_TEST_REQUIRE_PG=1.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { IntegrationDef, WorkflowDef } from '../../src/core/model.js';
import { LocalStore } from '../../src/store/lib.js';
import { openPgState } from '../../src/serve/state/pg-state.js';
import { assertPgReachable, describePg, dropSchemas, freshSchema, PG_URL } from '../helpers/pg.js';
import type { ExecutionRow, ServeState } from '../../src/serve/state/types.js';
import { call, cleanup, releaseAndPublish, tempDir, waitFor } from './helpers.js';
import { runAlloy, spawnServe } from './binary.js';

afterAll(cleanup);

const source = () => ({
  name: 'ticker',
  def: { apiVersion: 'alloy/v1', kind: 'Integration', name: 'ticker' } as unknown as IntegrationDef,
  workflows: [
    {
      name: 'tick',
      def: { apiVersion: 'alloy/v1', kind: 'Workflow', name: 'tick', trigger: { schedule: { every: '1s' } }, steps: [{ id: 'at', uses: 'transform', with: { at: '{{ event.scheduledAt }}' } }] } as unknown as WorkflowDef,
    },
  ],
});

async function allExecutions(state: ServeState): Promise<ExecutionRow[]> {
  const out: ExecutionRow[] = [];
  let after: string | undefined;
  do {
    const p = await state.executions.list({ workflow: 'ticker/tick' }, { limit: 200, after });
    out.push(...p.items);
    after = p.next;
  } while (after);
  return out;
}

describePg('schedules across three alloy serve processes (built binary) on PostgreSQL', () => {
  beforeAll(() => assertPgReachable());
  afterAll(() => dropSchemas());

  it('each tick runs once per installation', async () => {
    const project = tempDir('alloy-serve-ticks-');
    writeFileSync(path.join(project, 'alloy.config.yaml'), stringify({ apiVersion: 'alloy/v1', kind: 'Project', name: 'ticks' }));
    const schema = freshSchema('ticks');
    const db = ['--database', PG_URL, '--schema', schema];
    const storeDir = path.join(project, 'store');
    const store = new LocalStore(storeDir);
    await store.init();
    await releaseAndPublish(store, source());
    const env = { ALLOY_MASTER_KEY: Buffer.alloc(32, 3).toString('base64') };
    const admin = JSON.parse((await runAlloy(['serve', 'keys', 'create', '--role', 'admin', ...db, '--json'], project, env)).stdout).key as string;
    const args = [...db, '--store', storeDir];
    const first = await spawnServe(args, project, env);
    const servers = [first];
    try {
      for (const u of ['u1', 'u2']) {
        expect((await call(first.url, 'POST', '/v1/users', { token: admin, body: { id: u } })).status).toBe(201);
        expect((await call(first.url, 'POST', '/v1/installations', { token: admin, body: { userId: u, integration: 'ticker' } })).status).toBe(201);
      }
      // The other two read the installations when they start.
      servers.push(await spawnServe(args, project, env), await spawnServe(args, project, env));
      const state = await openPgState({ url: PG_URL, schema, poolSize: 2 });
      try {
        const startedAt = Date.now();
        // Ticks fired while all three ran: at least 4 seconds' worth.
        await waitFor(async () => {
          const ticks = new Set((await allExecutions(state)).map((e) => (e.record.event as { scheduledAt: string }).scheduledAt).filter((t) => Date.parse(t) > startedAt));
          return ticks.size >= 4;
        }, 'four ticks with three processes up', 30_000);
        // Every process fired the ticks: each stored some or found them stored (its /metrics says which).
        let duplicates = 0;
        for (const s of servers) {
          const text = await (await fetch(`${s.url}/metrics`)).text();
          const count = (outcome: string) => Number(new RegExp(`alloy_timer_claims_total\\{kind="schedule",outcome="${outcome}"\\} (\\d+)`).exec(text)?.[1] ?? 0);
          expect(count('stored') + count('duplicate')).toBeGreaterThanOrEqual(2 * 3);
          duplicates += count('duplicate');
        }
        expect(duplicates).toBeGreaterThanOrEqual(2 * 3);
        await Promise.all(servers.map((s) => s.stop()));
        const runs = await allExecutions(state);
        const perTick = new Map<string, number>();
        for (const e of runs) {
          const key = `${e.installationId} ${(e.record.event as { scheduledAt: string }).scheduledAt}`;
          perTick.set(key, (perTick.get(key) ?? 0) + 1);
        }
        const repeated = [...perTick].filter(([, n]) => n > 1);
        expect(repeated, JSON.stringify(repeated)).toEqual([]);
        const installations = new Set(runs.map((e) => e.installationId));
        expect(installations.size).toBe(2);
        expect(runs.length).toBeGreaterThanOrEqual(8);
      } finally {
        await state.close();
      }
    } finally {
      await Promise.all(servers.map((s) => s.stop()));
    }
  }, 90_000);
});
