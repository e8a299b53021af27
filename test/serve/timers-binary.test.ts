/**
 * Three `alloy serve` processes (the built binary, `npm run build` first) on one PostgreSQL
 * schema:
 * - every process arms the same `every: 1s` schedule for two installations, and the state's
 *   atomic ingest stores each tick once per installation;
 * - a polling trigger (`every: 1s`) against the fake Shopify: each order change becomes one
 *   execution, and the shop is polled about once per interval, not once per process.
 * Skipped (with one line) where no PostgreSQL answers, unless ALLOY_TEST_REQUIRE_PG=1.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { IntegrationDef, WorkflowDef } from '../../src/core/model.js';
import { LocalStore } from '../../src/store/lib.js';
import { startFakeShopify } from '../../src/testing/fake-shopify.js';
import { openPgState } from '../../src/serve/state/pg-state.js';
import { assertPgReachable, describePg, dropSchemas, freshSchema, PG_URL } from '../helpers/pg.js';
import { allExecutions, call, cleanup, releaseAndPublish, tempDir, waitFor } from './helpers.js';
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

const pollSource = () => ({
  name: 'watcher',
  def: { apiVersion: 'alloy/v1', kind: 'Integration', name: 'watcher', app: 'shopify' } as unknown as IntegrationDef,
  workflows: [
    {
      name: 'changed',
      def: { apiVersion: 'alloy/v1', kind: 'Workflow', name: 'changed', trigger: { app: 'shopify', event: 'orders/updated', poll: { every: '1s' } }, steps: [{ id: 'pick', uses: 'transform', with: { id: '{{ event.id }}' } }] } as unknown as WorkflowDef,
    },
  ],
});


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
          const ticks = new Set((await allExecutions(state, 'ticker/tick')).map((e) => (e.record.event as { scheduledAt: string }).scheduledAt).filter((t) => Date.parse(t) > startedAt));
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
        const runs = await allExecutions(state, 'ticker/tick');
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

  it('a polled shop: each order change runs once, and the shop is polled about once per interval', async () => {
    const fake = await startFakeShopify();
    const project = tempDir('alloy-serve-polls-');
    writeFileSync(path.join(project, 'alloy.config.yaml'), stringify({ apiVersion: 'alloy/v1', kind: 'Project', name: 'polls', apps: { shopify: { baseUrl: fake.url } }, egress: { allow: ['127.0.0.1'] } }));
    const schema = freshSchema('polls');
    const db = ['--database', PG_URL, '--schema', schema];
    const storeDir = path.join(project, 'store');
    const store = new LocalStore(storeDir);
    await store.init();
    await releaseAndPublish(store, pollSource());
    const env = { ALLOY_MASTER_KEY: Buffer.alloc(32, 4).toString('base64') };
    const admin = JSON.parse((await runAlloy(['serve', 'keys', 'create', '--role', 'admin', ...db, '--json'], project, env)).stdout).key as string;
    const args = [...db, '--store', storeDir];
    const first = await spawnServe(args, project, env);
    const servers = [first];
    const state = await openPgState({ url: PG_URL, schema, poolSize: 2 });
    try {
      expect((await call(first.url, 'POST', '/v1/users', { token: admin, body: { id: 'u1' } })).status).toBe(201);
      const cred = await call(first.url, 'POST', '/v1/users/u1/credentials', { token: admin, body: { app: 'shopify', kind: 'token', account: fake.shop, fields: { accessToken: fake.accessToken } } });
      expect((await call(first.url, 'POST', '/v1/installations', { token: admin, body: { userId: 'u1', integration: 'watcher', credentials: { shopify: cred.body.id } } })).status).toBe(201);
      servers.push(await spawnServe(args, project, env), await spawnServe(args, project, env));
      // The first poll sets the cursor at "now": orders change only after it.
      await waitFor(async () => (await state.cursors.get(`poll:${(await state.installations.list({})).items[0].id}:watcher/changed`)) !== undefined, 'the first poll');
      fake.requests.length = 0;
      const started = Date.now();
      for (let i = 0; i < 20; i++) {
        fake.addOrder({ updatedAt: new Date().toISOString() });
        await new Promise((r) => setTimeout(r, 100));
      }
      await waitFor(async () => (await allExecutions(state, 'watcher/changed')).length >= 20, '20 new orders', 30_000);
      // An order seen before changes again: a second version, a second execution.
      fake.updateOrder(fake.orders[fake.orders.length - 10].id, { note: 'edited' }, new Date().toISOString());
      const runs = await waitFor(async () => {
        const list = await allExecutions(state, 'watcher/changed');
        return list.length >= 21 ? list : undefined;
      }, '21 polled changes', 30_000);
      // A few more intervals: nothing is emitted twice.
      await new Promise((r) => setTimeout(r, 2500));
      const elapsed = (Date.now() - started) / 1000;
      const all = await allExecutions(state, 'watcher/changed');
      expect(all).toHaveLength(21);
      expect(new Set(all.map((e) => JSON.stringify(e.record.event))).size).toBe(21);
      expect(runs.length).toBe(21);
      // One slot per second across the three processes (not three polls a second): at most one
      // poll call per elapsed second, plus the slot in progress.
      const polls = fake.requests.filter((r) => r.operation === 'orders').length;
      expect(polls).toBeLessThanOrEqual(Math.ceil(elapsed) + 2);
      expect(polls).toBeGreaterThanOrEqual(2);
    } finally {
      await Promise.all(servers.map((s) => s.stop()));
      await state.close();
      await fake.close();
    }
  }, 90_000);
});
