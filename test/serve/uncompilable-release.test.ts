/**
 * A release that skipped validation (another client's, in a store) and does not compile (here
 * a step id every object has, which the engine refuses) fails its executions with E_COMPILE;
 * they were left queued, retried at every start and never ended.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, cleanup, exampleSource, releaseAndPublish, startTestServe, waitFor, type TestServe } from './helpers.js';

describe('alloy serve: a stored release that does not compile', () => {
  let serve: TestServe;
  let ingest: string;
  beforeAll(async () => {
    serve = await startTestServe();
    const source = exampleSource((_def, workflows) => {
      (workflows.get('create-order') as { steps: unknown[] }).steps = [{ id: 'valueOf', uses: 'transform', with: { a: '{{ event.orderId }}' } }];
      // Another workflow of the same event whose step list holds a null (compiling it threw a TypeError).
      workflows.set('null-step', { ...workflows.get('create-order')!, name: 'null-step', steps: [null] } as never);
    });
    await releaseAndPublish(serve.store, source);
    ingest = await serve.key('ingest');
    await call(serve.url, 'POST', '/v1/users', { token: serve.admin, body: { id: 'user-a' } });
    const cred = await call(serve.url, 'POST', '/v1/users/user-a/credentials', { token: serve.admin, body: { app: 'shopify', kind: 'token', account: 'a.myshopify.com', fields: { accessToken: 'shpat_x' } } });
    expect((await call(serve.url, 'POST', '/v1/installations', { token: serve.admin, body: { userId: 'user-a', integration: 'shopify-sync', credentials: { shopify: cred.body.id } } })).status).toBe(201);
  });
  afterAll(async () => {
    await serve?.close();
    cleanup();
  });

  it('fails the executions with E_COMPILE (a reserved step id, a null step), instead of leaving them queued', async () => {
    const data = { orderId: '1', email: 'a@example.com', lineItems: [{ title: 'x', quantity: 1, price: 1 }] };
    const r = await call(serve.url, 'POST', '/v1/run/event', { token: ingest, body: { event: 'acme.order.requested', userId: 'user-a', data } });
    expect(r.status).toBe(202);
    expect(r.body.executionIds).toHaveLength(2);
    const ended = await Promise.all(
      r.body.executionIds.map((id: string) =>
        waitFor(async () => {
          const e = await call(serve.url, 'GET', `/v1/executions/${id}`, { token: serve.admin });
          return e.body.status === 'failed' ? e.body : undefined;
        }, 'the execution to fail'),
      ),
    );
    const byWorkflow = Object.fromEntries(ended.map((e) => [e.workflow, e.error]));
    expect(byWorkflow['shopify-sync/create-order']).toMatchObject({ code: 'E_COMPILE', message: expect.stringContaining('step id "valueOf" is reserved') });
    expect(byWorkflow['shopify-sync/null-step']).toMatchObject({ code: 'E_COMPILE', message: expect.stringContaining('does not compile') });
    expect(await serve.state.executions.unfinished()).toEqual([]);
  });
});
