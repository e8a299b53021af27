/**
 * The per-request pieces of POST /v1/run/event that the ingest path's CPU work touched: an
 * unknown body field, a body nested too deep or compressed, the query parsed only when a route
 * reads it, and the rows made while the routes are checked (a refused request stores nothing).
 */
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, cleanup, exampleSource, releaseAndPublish, startTestServe, type TestServe } from './helpers.js';

describe('alloy serve: the run/event ingest path', () => {
  let serve: TestServe;
  let ingest: string;
  const data = { orderId: '1', email: 'a@example.com', lineItems: [{ title: 'x', quantity: 1, price: 1 }] };
  const stored = async () => (await call(serve.url, 'GET', '/v1/executions?userId=user-a&limit=200', { token: serve.admin })).body.items.length as number;

  beforeAll(async () => {
    serve = await startTestServe();
    await serve.server.runner.stop(0);
    await releaseAndPublish(serve.store, exampleSource());
    ingest = await serve.key('ingest');
    await call(serve.url, 'POST', '/v1/users', { token: serve.admin, body: { id: 'user-a' } });
    const cred = await call(serve.url, 'POST', '/v1/users/user-a/credentials', { token: serve.admin, body: { app: 'shopify', kind: 'token', account: 'a.myshopify.com', fields: { accessToken: 'shpat_x' } } });
    const inst = await call(serve.url, 'POST', '/v1/installations', { token: serve.admin, body: { userId: 'user-a', integration: 'shopify-sync', credentials: { shopify: cred.body.id } } });
    expect(inst.status).toBe(201);
  });

  afterAll(async () => {
    await serve?.close();
    cleanup();
  });

  it('refuses unknown fields, bad data, deep and compressed bodies with their codes, storing nothing', async () => {
    const unknown = await call(serve.url, 'POST', '/v1/run/event', { token: ingest, body: { event: 'acme.order.requested', userId: 'user-a', data, dta: {}, extra: 1 } });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.message).toBe('unknown fields `dta`, `extra`');
    expect(unknown.body.error.details.fields).toEqual([
      { path: '/dta', message: 'is not a field of this route' },
      { path: '/extra', message: 'is not a field of this route' },
    ]);
    // A key named like an Object.prototype member is a field like any other.
    const proto = await fetch(`${serve.url}/v1/run/event`, { method: 'POST', headers: { authorization: `Bearer ${ingest}`, 'content-type': 'application/json' }, body: '{"event":"acme.order.requested","userId":"user-a","__proto__":{}}' });
    expect(proto.status).toBe(400);
    expect(((await proto.json()) as { error: { message: string } }).error.message).toBe('unknown field `__proto__`');
    const bad = await call(serve.url, 'POST', '/v1/run/event', { token: ingest, body: { event: 'acme.order.requested', userId: 'user-a', data: { email: 'nope' } } });
    expect(bad.status).toBe(422);
    expect(bad.body.error.code).toBe('E_EVENT_INVALID');
    const deep = await call(serve.url, 'POST', '/v1/run/event', { token: ingest, body: { event: 'acme.order.requested', userId: 'user-a', data: JSON.parse('['.repeat(200) + ']'.repeat(200)) } });
    expect(deep.body.error.code).toBe('E_JSON_TOO_DEEP');
    const gz = await fetch(`${serve.url}/v1/run/event`, { method: 'POST', headers: { authorization: `Bearer ${ingest}`, 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: gzipSync(JSON.stringify({ event: 'acme.order.requested', userId: 'user-a', data })) });
    expect(gz.status).toBe(415);
    const text = await fetch(`${serve.url}/v1/run/event`, { method: 'POST', headers: { authorization: `Bearer ${ingest}`, 'content-type': 'text/plain' }, body: '{}' });
    expect(text.status).toBe(415);
    expect(await stored()).toBe(0);
  });

  it('stores one execution per route, once per Idempotency-Key, ignores a query on run/event, and still applies and checks one where a route reads it (limit, NUL)', async () => {
    const first = await call(serve.url, 'POST', '/v1/run/event', { token: ingest, body: { event: 'acme.order.requested', userId: 'user-a', data }, headers: { 'idempotency-key': 'k-1' } });
    expect(first.status).toBe(202);
    expect(first.body.executionIds).toHaveLength(1);
    const again = await call(serve.url, 'POST', '/v1/run/event', { token: ingest, body: { event: 'acme.order.requested', userId: 'user-a', data }, headers: { 'idempotency-key': 'k-1' } });
    expect(again.body).toEqual({ executionIds: first.body.executionIds, duplicate: true });
    // A query on a route that does not read it changes nothing; one that does is parsed.
    const withQuery = await call(serve.url, 'POST', '/v1/run/event?ignored=1', { token: ingest, body: { event: 'acme.order.requested', userId: 'user-a', data } });
    expect(withQuery.status).toBe(202);
    const page = await call(serve.url, 'GET', '/v1/executions?userId=user-a&limit=1', { token: serve.admin });
    expect(page.body.items.map((e: { id: string }) => e.id)).toEqual(first.body.executionIds);
    expect(page.body.next).toBe(first.body.executionIds[0]);
    expect((await call(serve.url, 'GET', '/v1/executions?limit=0', { token: serve.admin })).body.error.code).toBe('E_BAD_REQUEST');
    expect((await call(serve.url, 'GET', '/v1/executions?userId=a%00b', { token: serve.admin })).body.error.message).toBe('the path or query holds a NUL character');
    expect(await stored()).toBe(2);
  });

  it('answers a reused Idempotency-Key with another payload 422, and a retry of the same one (keys in any order) as its duplicate', async () => {
    const send = (body: unknown) => call(serve.url, 'POST', '/v1/run/event', { token: ingest, body, headers: { 'idempotency-key': 'k-reuse' } });
    const first = await send({ event: 'acme.order.requested', userId: 'user-a', data });
    expect(first.status).toBe(202);
    const before = await stored();
    const other = await send({ event: 'acme.order.requested', userId: 'user-a', data: { ...data, orderId: '2' } });
    expect(other.status).toBe(422);
    expect(other.body.error.code).toBe('E_IDEMPOTENCY_KEY_REUSED');
    // The same request, its fields in another order, is the first one's duplicate.
    const { lineItems, ...rest } = data;
    const retry = await send({ userId: 'user-a', data: { lineItems, ...rest }, event: 'acme.order.requested' });
    expect(retry.body).toEqual({ executionIds: first.body.executionIds, duplicate: true });
    expect(await stored()).toBe(before);
  });
});
