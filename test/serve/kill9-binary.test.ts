/**
 * kill -9 under load loses no acknowledged event: events answered 202 by the built binary are
 * all still there after SIGKILL and reach an end when serve starts again on the same data.
 * (An order call in flight at the kill is not repeated: the engine records its outcome as
 * unknown instead of creating a second order, so each acknowledged event gives at most one order.)
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { startFakeShopify } from '../../src/testing/fake-shopify.js';
import { LocalStore } from '../../src/store/lib.js';
import { call, cleanup, exampleSource, releaseAndPublish, tempDir, waitFor } from './helpers.js';
import { runAlloy, spawnServe } from './binary.js';

afterAll(cleanup);

describe('alloy serve (built binary) under kill -9', () => {
  it('keeps every acknowledged event and finishes them after a restart', async () => {
    const fakeOpts = { callDelayMs: 100 };
    const fake = await startFakeShopify(fakeOpts);
    const project = tempDir('alloy-serve-kill-');
    writeFileSync(path.join(project, 'alloy.config.yaml'), stringify({ apiVersion: 'alloy/v1', kind: 'Project', name: 'kill', apps: { shopify: { baseUrl: fake.url } }, egress: { allow: ['127.0.0.1'] } }));
    const data = path.join(project, 'data');
    const storeDir = path.join(project, 'store');
    const store = new LocalStore(storeDir);
    await store.init();
    await releaseAndPublish(store, exampleSource());
    const env = { ALLOY_MASTER_KEY: Buffer.alloc(32, 2).toString('base64') };
    const admin = JSON.parse((await runAlloy(['serve', 'keys', 'create', '--role', 'admin', '--data', data, '--json'], project, env)).stdout).key as string;
    let served = await spawnServe(['--data', data, '--store', storeDir], project, env);
    try {
      await call(served.url, 'POST', '/v1/users', { token: admin, body: { id: 'u1' } });
      const cred = await call(served.url, 'POST', '/v1/users/u1/credentials', { token: admin, body: { app: 'shopify', kind: 'token', account: fake.shop, fields: { accessToken: fake.accessToken } } });
      await call(served.url, 'POST', '/v1/installations', { token: admin, body: { userId: 'u1', integration: 'shopify-sync', credentials: { shopify: cred.body.id } } });
      const acked: string[] = [];
      const sends = Array.from({ length: 30 }, (_, n) =>
        call(served.url, 'POST', '/v1/run/event', { token: admin, body: { event: 'acme.order.requested', userId: 'u1', data: { orderId: `k-${n}`, email: `k${n}@example.com`, currency: 'EUR', lineItems: [{ title: 'x', quantity: 1, price: 1 }] } } })
          .then((a) => {
            if (a.status === 202) acked.push(...a.body.executionIds);
          })
          .catch(() => undefined),
      );
      await waitFor(() => acked.length >= 15, '15 acknowledged events');
      await served.stop('SIGKILL');
      await Promise.all(sends);
      const killedAt = acked.length;
      expect(killedAt).toBeGreaterThanOrEqual(15);

      served = await spawnServe(['--data', data, '--store', storeDir], project, env);
      const ends = await waitFor(async () => {
        const all = await Promise.all(acked.map(async (id) => (await call(served.url, 'GET', `/v1/executions/${id}`, { token: admin })).body));
        return all.every((e) => e.status === 'succeeded' || e.status === 'failed') ? all : undefined;
      }, 'every acknowledged execution to end', 30_000);
      expect(ends).toHaveLength(killedAt);
      const failed = ends.filter((e) => e.status === 'failed');
      // The only failures allowed: the calls in flight at the kill, whose outcome is unknown.
      for (const f of failed) expect(f.error.code, JSON.stringify(f.error)).toMatch(/OUTCOME_UNKNOWN/);
      expect(failed.length).toBeLessThanOrEqual(16);
      const succeeded = ends.length - failed.length;
      expect(fake.orders.length).toBeGreaterThanOrEqual(succeeded);
      // Events committed just before the kill whose 202 never reached the client also run (the
      // client would retry them with its Idempotency-Key): at most one order per event sent.
      expect(fake.orders.length).toBeLessThanOrEqual(30);
      expect(new Set(fake.orders.map((o) => o.email)).size).toBe(fake.orders.length);
    } finally {
      await served.stop();
      await fake.close();
    }
  }, 90_000);
});

describe('one alloy serve per SQLite data folder', () => {
  it('a second serve on the same --data is E_SERVE_LOCKED while the first runs (it resumed, and ran again, the first one\'s executions); after kill -9 it starts', async () => {
    const project = tempDir('alloy-serve-lock-');
    writeFileSync(path.join(project, 'alloy.config.yaml'), stringify({ apiVersion: 'alloy/v1', kind: 'Project', name: 'lock' }));
    const data = path.join(project, 'data');
    const storeDir = path.join(project, 'store');
    await new LocalStore(storeDir).init();
    const env = { ALLOY_MASTER_KEY: Buffer.alloc(32, 2).toString('base64') };
    let served = await spawnServe(['--data', data, '--store', storeDir], project, env);
    try {
      const second = await runAlloy(['serve', '--port', '0', '--data', data, '--store', storeDir], project, env);
      expect(second.code).toBe(1);
      expect(second.stderr).toContain('E_SERVE_LOCKED');
      expect(second.stderr).not.toMatch(/\n\s+at /);
      // Operator commands on the same folder still work while it serves.
      expect((await runAlloy(['serve', 'keys', 'create', '--role', 'read', '--data', data, '--json'], project, env)).code).toBe(0);
      await served.stop('SIGKILL');
      served = await spawnServe(['--data', data, '--store', storeDir], project, env);
      expect((await call(served.url, 'GET', '/healthz')).status).toBe(200);
    } finally {
      await served.stop();
    }
  }, 60_000);
});
