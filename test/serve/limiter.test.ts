/** Fairness to shops: a bound on concurrent executions per installation, and pacing from Shopify's cost report. */
import { afterAll, describe, expect, it } from 'vitest';
import { CostLimiter, KeyedSemaphore } from '../../src/serve/limiter.js';
import { memoryBucketStore } from '../../src/serve/state/buckets.js';
import { startFakeShopify } from '../../src/testing/fake-shopify.js';
import { openSqliteState } from '../../src/serve/state/sqlite-state.js';
import { call, cleanup, exampleSource, releaseAndPublish, startTestServe, tempDir, waitFor } from './helpers.js';

afterAll(cleanup);

describe('KeyedSemaphore', () => {
  it('bounds each key on its own and serves waiters in order', async () => {
    const s = new KeyedSemaphore(2);
    const a1 = await s.acquire('a');
    const a2 = await s.acquire('a');
    const order: string[] = [];
    const a3 = s.acquire('a').then((r) => (order.push('a3'), r));
    const a4 = s.acquire('a').then((r) => (order.push('a4'), r));
    const b1 = await s.acquire('b'); // another key is not held up
    expect(s.running('a')).toBe(2);
    a1();
    (await a3)();
    a2();
    (await a4)();
    expect(order).toEqual(['a3', 'a4']);
    b1();
    expect(s.running('a')).toBe(0);
  });
});

describe('CostLimiter', () => {
  it('waits for the bucket to hold the last requested cost, at the restore rate, and reserves it', async () => {
    let now = 1_000_000;
    const slept: number[] = [];
    // The clock moves only when the limiter sleeps.
    const l = new CostLimiter({ now: () => now, sleep: async (ms) => void (slept.push(ms), (now += ms)) });
    await l.before('shopify:a'); // unknown bucket: no wait
    await l.after('shopify:a', JSON.stringify({ data: {}, extensions: { cost: { requestedQueryCost: 100, throttleStatus: { maximumAvailable: 2000, currentlyAvailable: 50, restoreRate: 100 } } } }));
    await l.before('shopify:b');
    expect(slept).toEqual([]);
    now += 250; // 75 available: a quarter second more for 100
    await l.before('shopify:a');
    expect(slept).toEqual([250]);
    // That call took its 100: the next one waits a full second.
    await l.before('shopify:a');
    expect(slept).toEqual([250, 1000]);
    await l.after('shopify:a', 'not json, throttleStatus');
    await l.after('shopify:a', JSON.stringify({ data: {} }));
  });

  it('two limiters over one bucket store pace one shop together', async () => {
    let now = 0;
    const store = memoryBucketStore();
    const clock = { now: () => now, sleep: async (ms: number) => void (now += ms) };
    const a = new CostLimiter(clock, store);
    const b = new CostLimiter(clock, store);
    await a.after('shopify:s', JSON.stringify({ extensions: { cost: { requestedQueryCost: 10, throttleStatus: { maximumAvailable: 20, currentlyAvailable: 20, restoreRate: 10 } } } }));
    await a.before('shopify:s');
    await b.before('shopify:s');
    expect(now).toBe(0);
    await b.before('shopify:s'); // 0 left: one second for 10
    expect(now).toBe(1000);
  });
});

describe('per-installation concurrency against the fake Shopify', () => {
  it('never runs more than the bound for one shop, and a quiet shop is served while a busy one has a backlog', async () => {
    const fakeOpts = { callDelayMs: 150 };
    const fake = await startFakeShopify(fakeOpts);
    fake.addShop('quiet.myshopify.com', 'shpat_quiet_token');
    const serve = await startTestServe({ perInstallation: 2, concurrency: 8, settings: { shopify: { baseUrl: fake.url } } });
    try {
      await releaseAndPublish(serve.store, exampleSource());
      const ingest = await serve.key('ingest');
      const setup = async (userId: string, shop: string, token: string) => {
        await call(serve.url, 'POST', '/v1/users', { token: serve.admin, body: { id: userId } });
        const cred = await call(serve.url, 'POST', `/v1/users/${userId}/credentials`, { token: serve.admin, body: { app: 'shopify', kind: 'token', account: shop, fields: { accessToken: token } } });
        await call(serve.url, 'POST', '/v1/installations', { token: serve.admin, body: { userId, integration: 'shopify-sync', credentials: { shopify: cred.body.id } } });
      };
      await setup('busy', fake.shop, fake.accessToken);
      await setup('quiet', 'quiet.myshopify.com', 'shpat_quiet_token');
      const data = (n: number) => ({ orderId: `o-${n}`, email: `c${n}@example.com`, currency: 'EUR', lineItems: [{ title: 'x', quantity: 1, price: 1 }] });
      const busyIds = (await Promise.all(Array.from({ length: 12 }, (_, n) => call(serve.url, 'POST', '/v1/run/event', { token: ingest, body: { event: 'acme.order.requested', userId: 'busy', data: data(n) } })))).flatMap((a) => a.body.executionIds as string[]);
      const quietId = (await call(serve.url, 'POST', '/v1/run/event', { token: ingest, body: { event: 'acme.order.requested', userId: 'quiet', data: data(99) } })).body.executionIds[0];
      const ended = async (id: string) => {
        const e = await call(serve.url, 'GET', `/v1/executions/${id}`, { token: serve.admin });
        return e.body.status === 'succeeded' ? Date.parse(e.body.endedAt) : undefined;
      };
      const quietEnd = await waitFor(() => ended(quietId), 'the quiet shop', 20_000);
      const busyEnds = await waitFor(async () => {
        const all = await Promise.all(busyIds.map(ended));
        return all.every((x) => x !== undefined) ? (all as number[]) : undefined;
      }, 'the busy shop', 30_000);
      expect(fake.maxConcurrent(fake.shop)).toBe(2);
      expect(fake.ordersFor(fake.shop)).toHaveLength(12);
      expect(fake.ordersFor('quiet.myshopify.com')).toHaveLength(1);
      // 12 calls two at a time take six rounds; the quiet shop's one call, sent last, is not
      // queued behind them: it reaches Shopify within the first rounds (by arrival order at the
      // fake, not wall time, so a loaded machine does not change the verdict).
      const calls = fake.requests.filter((r) => r.operation === 'orderCreate').map((r) => r.shop);
      expect(calls).toHaveLength(13);
      // (Holding a worker per parked execution, as before the fix, put it at 7 here.)
      expect(calls.indexOf('quiet.myshopify.com')).toBeLessThan(5);
      expect(quietEnd).toBeLessThan(Math.max(...busyEnds));
    } finally {
      await serve.close();
      await fake.close();
    }
  });
});

describe("an execution's calls and the cost buckets", () => {
  it("a Shopify call waits for its shop's bucket (shopify:<shop>); a plain http call for none", async () => {
    const fake = await startFakeShopify();
    const state = openSqliteState(`${tempDir('alloy-serve-buckets-')}/serve.db`);
    const taken: string[] = [];
    const take = state.buckets.take.bind(state.buckets);
    state.buckets.take = (key, now) => (taken.push(key), take(key, now));
    const serve = await startTestServe({ state, settings: { shopify: { baseUrl: fake.url } } });
    try {
      await releaseAndPublish(serve.store, exampleSource());
      await releaseAndPublish(serve.store, {
        name: 'plain',
        def: { apiVersion: 'alloy/v1', kind: 'Integration', name: 'plain' },
        workflows: [{ name: 'ping', def: { apiVersion: 'alloy/v1', kind: 'Workflow', name: 'ping', trigger: { event: 'plain.ping' }, steps: [{ id: 'get', uses: 'http', with: { url: `${fake.url}/ping` } }] } }],
      } as never);
      await call(serve.url, 'POST', '/v1/users', { token: serve.admin, body: { id: 'u1' } });
      const cred = await call(serve.url, 'POST', '/v1/users/u1/credentials', { token: serve.admin, body: { app: 'shopify', kind: 'token', account: fake.shop, fields: { accessToken: fake.accessToken } } });
      await call(serve.url, 'POST', '/v1/installations', { token: serve.admin, body: { userId: 'u1', integration: 'shopify-sync', credentials: { shopify: cred.body.id } } });
      await call(serve.url, 'POST', '/v1/installations', { token: serve.admin, body: { userId: 'u1', integration: 'plain' } });
      const ended = async (id: string) => {
        const e = await call(serve.url, 'GET', `/v1/executions/${id}`, { token: serve.admin });
        return e.body.status !== 'queued' && e.body.status !== 'running' ? e.body : undefined;
      };
      const ping = (await call(serve.url, 'POST', '/v1/run/event', { token: serve.admin, body: { event: 'plain.ping', userId: 'u1', data: {} } })).body.executionIds[0];
      await waitFor(() => ended(ping), 'the plain call', 20_000);
      expect(taken).toEqual([]);
      const data = { orderId: 'o-1', email: 'c1@example.com', currency: 'EUR', lineItems: [{ title: 'x', quantity: 1, price: 1 }] };
      const order = (await call(serve.url, 'POST', '/v1/run/event', { token: serve.admin, body: { event: 'acme.order.requested', userId: 'u1', data } })).body.executionIds[0];
      expect((await waitFor(() => ended(order), 'the Shopify call', 20_000)).status).toBe('succeeded');
      const shopifyCalls = fake.requests.filter((r) => r.shop === fake.shop).length;
      expect(shopifyCalls).toBeGreaterThan(0);
      expect(taken).toEqual(Array.from({ length: shopifyCalls }, () => `shopify:${fake.shop}`));
    } finally {
      await serve.close();
      await fake.close();
    }
  });
});
