/** Executions acknowledged but not finished when the process stopped are run when serve starts again, on their version. */
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startFakeShopify } from '../../src/testing/fake-shopify.js';
import { LocalStore } from '../../src/store/lib.js';
import { makeKeyring } from '../../src/serve/crypto.js';
import { storeDefinitionSource } from '../../src/serve/definitions.js';
import { startServeServer } from '../../src/serve/server.js';
import { openSqliteState } from '../../src/serve/state/sqlite-state.js';
import { call, cleanup, exampleSource, MASTER, releaseAndPublish, startTestServe, waitFor } from './helpers.js';

afterAll(cleanup);

describe('resume after a stop', () => {
  it('runs what was queued or interrupted, on the version it recorded', async () => {
    const fakeOpts = { callDelayMs: 0 };
    const fake = await startFakeShopify(fakeOpts);
    const first = await startTestServe({ settings: { shopify: { baseUrl: fake.url } } });
    await releaseAndPublish(first.store, exampleSource());
    await call(first.url, 'POST', '/v1/users', { token: first.admin, body: { id: 'u1' } });
    const cred = await call(first.url, 'POST', '/v1/users/u1/credentials', { token: first.admin, body: { app: 'shopify', kind: 'token', account: fake.shop, fields: { accessToken: fake.accessToken } } });
    await call(first.url, 'POST', '/v1/installations', { token: first.admin, body: { userId: 'u1', integration: 'shopify-sync', credentials: { shopify: cred.body.id } } });
    // Stop the runner before anything runs: acknowledged work stays queued in the state.
    await first.server.runner.stop(0);
    const ev = await call(first.url, 'POST', '/v1/run/event', { token: first.admin, body: { event: 'acme.order.requested', userId: 'u1', data: { orderId: 'r-1', email: 'r@example.com', currency: 'EUR', lineItems: [{ title: 'x', quantity: 1, price: 1 }] } } });
    expect(ev.status).toBe(202);
    // A v2 is published meanwhile; the queued execution still runs on v1.
    await releaseAndPublish(first.store, exampleSource((_d, w) => ((w.get('create-order')!.steps[1] as { with: Record<string, unknown> }).with.v = 2)));
    await first.close();
    expect(fake.orders).toHaveLength(0);

    const state = openSqliteState(path.join(first.dataDir, 'serve.db'));
    const store = new LocalStore(first.store.dir);
    const second = await startServeServer({ state, keyring: makeKeyring([MASTER]), source: storeDefinitionSource(store), settings: { shopify: { baseUrl: fake.url } }, egress: { allow: ['127.0.0.1'] } });
    try {
      const row = await waitFor(async () => {
        const e = await state.executions.get(ev.body.executionIds[0]);
        return e?.status === 'succeeded' ? e : undefined;
      }, 'the resumed execution');
      expect(row.version).toBe(1);
      expect(row.record.steps.result.output).not.toHaveProperty('v');
      expect(fake.orders.map((o) => o.email)).toEqual(['r@example.com']);
    } finally {
      await second.close();
      await fake.close();
    }
  });
});
