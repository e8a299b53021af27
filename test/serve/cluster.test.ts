/**
 * A loopback cluster (issue 12): the built binary as 1 api and 3 worker processes on one
 * PostgreSQL schema, custom events for several shops of the fake Shopify, a worker SIGKILLed
 * mid-run and started again. Every acknowledged event completes, each shop's calls stay
 * within the per-shop bound (the fake counts calls in flight), steps repeat only for
 * executions that were in flight on the killed worker, and no job is left pending.
 * bench/cluster-bench.mjs is the large version (10,000 events, a PostgreSQL restart).
 * `npm run build` first.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startFakeShopify, type FakeShopify } from '../../src/testing/fake-shopify.js';
import { LocalStore } from '../../src/store/lib.js';
import { assertPgReachable, describePg, dropSchemas, freshSchema, PG_URL } from '../helpers/pg.js';
import { runAlloy, spawnServe } from './binary.js';
import { call, cleanup, exampleSource, releaseAndPublish, tempDir, waitFor } from './helpers.js';

const SHOPS = 8;
const EVENTS = 800;
const PER_SHOP = 4; // the default bound

describePg('alloy serve as a cluster: 1 api + 3 workers on one database', () => {
  let fake: FakeShopify;
  const procs: { stop(signal?: NodeJS.Signals): Promise<void> }[] = [];
  beforeAll(() => assertPgReachable());
  afterAll(async () => {
    for (const p of procs) await p.stop('SIGKILL').catch(() => {});
    await fake?.close();
    await dropSchemas();
    cleanup();
  });

  it('finishes every acknowledged event through a worker SIGKILL, within the per-shop bound, nothing left pending', { timeout: 180_000 }, async () => {
    fake = await startFakeShopify({ callDelayMs: 10, customers: [{ email: 'c@example.com' }] });
    const customerId = fake.customers[0].id;
    const project = tempDir('alloy-cluster-');
    writeFileSync(path.join(project, 'alloy.config.yaml'), stringify({ apiVersion: 'alloy/v1', kind: 'Project', name: 'cluster', apps: { shopify: { baseUrl: fake.url } }, egress: { allow: ['127.0.0.1'] } }));
    const storeDir = path.join(project, 'store');
    const store = new LocalStore(storeDir);
    await store.init();
    await releaseAndPublish(store, exampleSource());
    const schema = freshSchema('cluster');
    const db = ['--database', PG_URL, '--schema', schema, '--store', storeDir];
    const env = { ALLOY_MASTER_KEY: Buffer.alloc(32, 5).toString('base64'), SHOPIFY_API_KEY: fake.clientId, SHOPIFY_API_SECRET: fake.clientSecret };
    const made = await runAlloy(['serve', 'keys', 'create', '--role', 'admin', '--database', PG_URL, '--schema', schema, '--json'], project, env);
    expect(made.code, made.stderr).toBe(0);
    const admin = JSON.parse(made.stdout).key as string;

    const api = await spawnServe([...db, '--role', 'api'], project, env);
    procs.push(api);
    // --concurrency 16: what a killed worker can have in flight, which bounds the repeats below.
    const worker = () => spawnServe([...db, '--role', 'worker', '--recover-after', '3', '--concurrency', '16'], project, env);
    const workers = [await worker(), await worker(), await worker()];
    procs.push(...workers);
    // A worker answers the ops routes only.
    expect((await call(workers[0].url, 'GET', '/healthz')).status).toBe(200);
    expect((await call(workers[0].url, 'GET', '/v1/users', { token: admin })).status).toBe(404);

    for (let s = 0; s < SHOPS; s++) {
      const shop = `shop-${s}.myshopify.com`;
      fake.addShop(shop, `shpat_cluster_${s}`);
      expect((await call(api.url, 'POST', '/v1/users', { token: admin, body: { id: `u${s}` } })).status).toBe(201);
      const cred = await call(api.url, 'POST', `/v1/users/u${s}/credentials`, { token: admin, body: { app: 'shopify', kind: 'token', account: shop, fields: { shop, accessToken: `shpat_cluster_${s}` } } });
      expect(cred.status, JSON.stringify(cred.body)).toBe(201);
      const inst = await call(api.url, 'POST', '/v1/installations', { token: admin, body: { userId: `u${s}`, integration: 'shopify-sync', credentials: { shopify: cred.body.id } } });
      expect(inst.status, JSON.stringify(inst.body)).toBe(201);
    }
    const ingestKey = JSON.parse((await runAlloy(['serve', 'keys', 'create', '--role', 'ingest', '--database', PG_URL, '--schema', schema, '--json'], project, env)).stdout).key as string;

    const acked = new Set<string>();
    let sent = 0;
    const send = async (n: number) => {
      const r = await call(api.url, 'POST', '/v1/run/event', { token: ingestKey, headers: { 'idempotency-key': `ev-${n}` }, body: { event: 'acme.customer.tagged', userId: `u${n % SHOPS}`, data: { customerId, tags: [`t${n}`] } } });
      expect(r.status, JSON.stringify(r.body)).toBe(202);
      for (const id of r.body.executionIds) acked.add(id);
      sent++;
    };
    const sender = (async () => {
      for (let n = 0; n < EVENTS; n += 8) await Promise.all(Array.from({ length: Math.min(8, EVENTS - n) }, (_, k) => send(n + k)));
    })();
    // Kill one worker while it has executions in flight, then start it again.
    await waitFor(async () => sent >= EVENTS / 3, 'a third sent', 60_000);
    await workers[0].stop('SIGKILL');
    const restarted = await worker();
    procs.push(restarted);
    await sender;
    expect(acked.size).toBe(EVENTS);

    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    try {
      const counts = async () => Object.fromEntries((await client.query(`SELECT status, count(*)::int AS n FROM ${schema}.executions GROUP BY status`)).rows.map((r) => [r.status, r.n]));
      await waitFor(async () => (await counts()).succeeded === EVENTS, 'every execution succeeded', 120_000);
      expect(await counts()).toEqual({ succeeded: EVENTS });
      // A job is completed just after its execution's final checkpoint (another statement), and
      // a killed worker's expired job waits out its retry delay before a worker finds its
      // execution finished and completes it: nothing may stay pending beyond that.
      const pending = async () => (await client.query(`SELECT count(*)::int AS n FROM ${schema}.job WHERE state IN ('created', 'retry', 'active')`)).rows[0].n as number;
      await waitFor(async () => (await pending()) === 0, 'no job pending', 30_000).catch(() => {});
      expect(await pending()).toBe(0);
    } finally {
      await client.end();
    }
    // Every event's tag reached the shop; a tag was sent twice only for an execution in flight on the killed worker.
    const tags = new Map<string, number>();
    for (const r of fake.requests) if (r.operation === 'tagsAdd') for (const t of ((r.json as { variables?: { tags?: string[] } })?.variables?.tags ?? [])) tags.set(t, (tags.get(t) ?? 0) + 1);
    for (let n = 0; n < EVENTS; n++) expect(tags.get(`t${n}`) ?? 0, `t${n}`).toBeGreaterThanOrEqual(1);
    const repeated = [...tags.values()].filter((c) => c > 1).length;
    expect(repeated).toBeLessThanOrEqual(16); // at most the killed worker's concurrency
    for (let s = 0; s < SHOPS; s++) expect(fake.maxConcurrent(`shop-${s}.myshopify.com`)).toBeLessThanOrEqual(PER_SHOP);
    expect(Math.max(...Array.from({ length: SHOPS }, (_, s) => fake.maxConcurrent(`shop-${s}.myshopify.com`)))).toBeGreaterThan(1);
  });
});
