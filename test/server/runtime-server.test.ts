import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHmac } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { openEventLog } from '../../src/server/event-log.js';
import { indexDefinitions } from '../../src/server/definitions.js';
import { createRuntimeServer, type RuntimeEvent, type RuntimeServer } from '../../src/server/runtime-server.js';
import { standardWebhookHeaders } from '../../src/engine/standard-webhooks.js';
import { shopifyWebhookHeaders } from '../../src/connectors/shopify/webhooks.js';
import { signIngress } from '../../src/server/client.js';
import { fakeExecutor, http, postJson, projectOf, tempDir, waitFor, workflow } from './helpers.js';
import { readThirdPartyFixture, thirdPartyJson } from '../helpers/fixtures.js';

const SECRET = 'shpss_test_secret';
const vector = thirdPartyJson('shopify/webhook-hmac-vector.json');
const orderPayload = readThirdPartyFixture('shopify/orders-create.json');

const workflows = [
  workflow('create-order', {
    event: 'acme.order.requested',
    schema: { type: 'object', required: ['email'], properties: { email: { type: 'string', format: 'email' }, qty: { type: 'integer' } } },
  }, [{ id: 'a', uses: 'transform', with: {} }, { id: 'b', uses: 'transform', with: {} }]),
  workflow('order-created', { app: 'shopify', event: 'orders/create' }),
  workflow('products', { app: 'shopify', event: 'products/create' }),
  workflow('hook-hmac', { webhook: 'acme-hmac', verify: { scheme: 'hmac-sha256', header: 'X-Acme-Signature', encoding: 'hex', secret: '{{ secrets.ACME_HOOK_SECRET }}' } }),
  workflow('hook-std', { webhook: 'acme-std', verify: { scheme: 'standard-webhooks', secret: '{{ secrets.ACME_STD_SECRET }}' } }),
  workflow('hook-open', { webhook: 'open', schema: { type: 'object', required: ['n'] } }),
];
const STD_SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const INGRESS_SECRET = 'whsec_aW5ncmVzcy1zZWNyZXQtZm9yLXRlc3Rz';
const JSON_TYPE = { 'content-type': 'application/json' };

describe('runtime server', () => {
  let tmp: ReturnType<typeof tempDir>;
  let server: RuntimeServer;
  let base: string;
  let events: RuntimeEvent[];
  let fake: ReturnType<typeof fakeExecutor>;

  async function start(options: { executor?: ReturnType<typeof fakeExecutor>; bodyLimit?: number; recordDir?: string; shutdownGraceMs?: number } = {}) {
    fake = options.executor ?? fakeExecutor();
    events = [];
    server = createRuntimeServer({
      log: openEventLog({ file: path.join(tmp.dir, 'dev.sqlite') }),
      definitions: indexDefinitions(projectOf(tmp.dir, workflows)),
      executor: fake.executor,
      secrets: { SHOPIFY_API_SECRET: SECRET, ACME_HOOK_SECRET: 'hook-secret', ACME_STD_SECRET: STD_SECRET },
      ingressSecret: INGRESS_SECRET,
      bodyLimit: options.bodyLimit,
      recordDir: options.recordDir,
      shutdownGraceMs: options.shutdownGraceMs,
      onEvent: (e) => events.push(e),
    });
    base = await server.listen();
  }

  beforeEach(() => {
    tmp = tempDir();
  });
  afterEach(async () => {
    await server?.close();
    tmp.cleanup();
  });

  const counts = () => ({ deliveries: server.log.countDeliveries(), executions: server.log.listExecutions({ limit: 1000 }).length });

  it('binds 127.0.0.1 by default and answers /healthz', async () => {
    await start();
    expect(new URL(base).hostname).toBe('127.0.0.1');
    const res = await http('GET', `${base}/healthz`);
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ ok: true, workflows: workflows.length });
  });

  it('accepts an event, answers 202 with execution ids, and runs it', async () => {
    await start();
    const res = await postJson(`${base}/v1/run/event`, { event: 'acme.order.requested', userId: 'u1', data: { email: 'a@b.co' } });
    expect(res.status).toBe(202);
    expect(res.json.executions).toHaveLength(1);
    const id = res.json.executions[0].id;
    expect(res.json.executions[0].workflow).toBe('demo/create-order');
    const got = await http('GET', `${base}/v1/executions/${id}?wait=5000`);
    expect(got.json.execution.status).toBe('succeeded');
    expect(got.json.execution.userId).toBe('u1');
    expect(got.json.execution.record.event).toEqual({ email: 'a@b.co' });
    expect(Object.keys(got.json.execution.record.steps)).toEqual(['a', 'b']);
    // The answer may come as soon as the final record is committed, the event once it is synced.
    await waitFor(() => events.some((e) => e.type === 'execution' && e.record.id === id), 'the execution event');
    expect(events.filter((e) => e.type === 'step')).toHaveLength(2);
    const list = await http('GET', `${base}/v1/executions?status=succeeded&workflow=create-order`);
    expect(list.json.executions.map((e: any) => e.id)).toEqual([id]);
  });

  it('answers 422 with JSON paths for data that breaks the trigger schema, and stores nothing', async () => {
    await start();
    const res = await postJson(`${base}/v1/run/event`, { event: 'acme.order.requested', data: { email: 'nope', qty: 1.5 } });
    expect(res.status).toBe(422);
    expect(res.json.error.code).toBe('E_EVENT_SCHEMA');
    expect(res.json.error.details.errors.map((e: any) => e.path).sort()).toEqual(['/data/email', '/data/qty']);
    const missing = await postJson(`${base}/v1/run/event`, { event: 'acme.order.requested', data: {} });
    expect(missing.json.error.details.errors).toEqual([{ workflow: 'demo/create-order', path: '/data/email', message: 'is required' }]);
    const badUser = await postJson(`${base}/v1/run/event`, { event: 'acme.order.requested', userId: '../etc', data: { email: 'a@b.co' } });
    expect([badUser.status, badUser.json.error.details.errors[0].path]).toEqual([422, '/userId']);
    const shape = await postJson(`${base}/v1/run/event`, { name: 'x' });
    expect(shape.status).toBe(422);
    expect(shape.json.error.details.errors.map((e: any) => e.path)).toEqual(['/event', '/name']);
    expect(counts()).toEqual({ deliveries: 0, executions: 0 });
  });

  it('answers 415, 400, 413, 404 and 405 with JSON error bodies and stores nothing', async () => {
    await start({ bodyLimit: 1000 });
    const wrongType = await http('POST', `${base}/v1/run/event`, '{"event":"x"}', { 'content-type': 'text/plain' });
    expect([wrongType.status, wrongType.json.error.code]).toEqual([415, 'E_UNSUPPORTED_MEDIA_TYPE']);
    const badJson = await http('POST', `${base}/v1/run/event`, '{"event":', { 'content-type': 'application/json' });
    expect([badJson.status, badJson.json.error.code]).toEqual([400, 'E_BAD_JSON']);
    const big = await postJson(`${base}/v1/run/event`, { event: 'acme.order.requested', data: { email: 'a@b.co', pad: 'x'.repeat(2000) } });
    expect([big.status, big.json.error.code]).toEqual([413, 'E_BODY_TOO_LARGE']);
    const unknown = await http('GET', `${base}/v1/nope`);
    expect([unknown.status, unknown.json.error.code]).toEqual([404, 'E_NOT_FOUND']);
    const method = await http('DELETE', `${base}/v1/executions`);
    expect([method.status, method.headers.allow]).toEqual([405, 'GET']);
    // The routes are exact: no HEAD for GET, no trailing slash, no empty parameter, and a
    // malformed escape is a 400 only on a route's own path.
    const head = await http('HEAD', `${base}/healthz`);
    expect([head.status, head.headers.allow]).toEqual([405, 'GET']);
    expect((await http('GET', `${base}/healthz/`)).status).toBe(404);
    expect((await http('GET', `${base}/v1/executions/`)).json.error.code).toBe('E_NOT_FOUND');
    expect((await http('GET', `${base}/v1/nope%ZZ`)).json.error.code).toBe('E_NOT_FOUND');
    const badOther = await http('GET', `${base}/v1/executions/%ZZ/replay`);
    expect([badOther.status, badOther.headers.allow]).toEqual([405, 'POST']);
    const bigShopify = await http('POST', `${base}/v1/webhooks/shopify`, Buffer.alloc(5000, 32), { 'content-type': 'application/json' });
    expect(bigShopify.status).toBe(413);
    expect(counts()).toEqual({ deliveries: 0, executions: 0 });
    expect(events.filter((e) => e.type === 'rejected').map((e: any) => e.status)).toEqual([415, 400, 413, 413]);
  });

  it('verifies the Shopify HMAC vector from shopify-app-js over the raw bytes', async () => {
    fake = fakeExecutor();
    events = [];
    server = createRuntimeServer({
      log: openEventLog({ file: path.join(tmp.dir, 'dev.sqlite') }),
      definitions: indexDefinitions(projectOf(tmp.dir, workflows)),
      executor: fake.executor,
      secrets: { SHOPIFY_API_SECRET: vector.secret },
    });
    base = await server.listen();
    const res = await http('POST', `${base}/v1/webhooks/shopify`, vector.raw_body, { ...vector.headers, 'content-type': 'application/json' });
    expect(res.status).toBe(202);
    expect(res.json.executions.map((e: any) => e.workflow)).toEqual(['demo/products']);
    const stored = server.log.getDelivery(res.json.deliveryId)!;
    expect(stored.body.toString()).toBe(vector.raw_body);
    expect(stored.verification).toBe('shopify-hmac');
    // On loopback the key is the delivery id (test/security/dedupe.test.ts covers the tunnel).
    expect(stored.dedupeKey).toBe('shopify:123456789');
  });

  it('routes a signed Shopify delivery, de-duplicates on X-Shopify-Webhook-Id, and rejects bad ones', async () => {
    await start();
    const headers = shopifyWebhookHeaders({ topic: 'orders/create', shop: 'acme.myshopify.com', apiVersion: '2025-10', body: orderPayload, secret: SECRET });
    const first = await http('POST', `${base}/v1/webhooks/shopify`, orderPayload, headers);
    expect(first.status).toBe(202);
    expect(first.json.executions[0].workflow).toBe('demo/order-created');
    const ex = await http('GET', `${base}/v1/executions/${first.json.executions[0].id}?wait=5000`);
    expect(ex.json.execution.record.event.id).toBe(450789469);

    const dup = await http('POST', `${base}/v1/webhooks/shopify`, orderPayload, headers);
    expect(dup.status).toBe(200);
    expect(dup.json).toMatchObject({ duplicate: true, deliveryId: first.json.deliveryId, executions: [{ id: first.json.executions[0].id }] });

    const before = counts();
    const tampered = Buffer.from(orderPayload.toString().replace('450789469', '450789470'));
    const bad = await http('POST', `${base}/v1/webhooks/shopify`, tampered, { ...headers, 'X-Shopify-Webhook-Id': 'other' });
    expect([bad.status, bad.json.error.code]).toEqual([401, 'E_BAD_SIGNATURE']);
    const { 'X-Shopify-Shop-Domain': _omit, ...noShop } = headers;
    const missing = await http('POST', `${base}/v1/webhooks/shopify`, orderPayload, { ...noShop, 'X-Shopify-Webhook-Id': 'other2' });
    expect(missing.status).toBe(400);
    expect(missing.json.error.message).toContain('X-Shopify-Shop-Domain');
    const signedBadJson = Buffer.from('{not json');
    const badJson = await http('POST', `${base}/v1/webhooks/shopify`, signedBadJson, {
      ...shopifyWebhookHeaders({ topic: 'orders/create', shop: 'a.myshopify.com', apiVersion: '2025-10', body: signedBadJson, secret: SECRET }),
    });
    expect(badJson.status).toBe(400);
    expect(counts()).toEqual(before);
    expect(before).toEqual({ deliveries: 1, executions: 1 });
  });

  it('does not store credentials from request headers', async () => {
    await start();
    const res = await postJson(`${base}/v1/run/event`, { event: 'acme.order.requested', data: { email: 'a@b.co' } }, {
      authorization: 'Bearer sk_live_abc',
      'x-api-key': 'k-123',
      'x-request-id': 'r1',
    });
    const stored = server.log.getDelivery(res.json.deliveryId)!;
    expect(stored.headers['x-request-id']).toBe('r1');
    expect(stored.headers.authorization).toBeUndefined();
    expect(stored.headers['x-api-key']).toBeUndefined();
  });

  it('verifies custom webhooks: hmac-sha256, Standard Webhooks (with de-duplication), and unsigned with a schema', async () => {
    await start();
    const body = '{"order":1}';
    const sig = createHmac('sha256', 'hook-secret').update(body).digest('hex');
    const ok = await http('POST', `${base}/v1/webhooks/custom/acme-hmac`, body, { 'content-type': 'application/json', 'x-acme-signature': sig });
    expect(ok.status).toBe(202);
    const bad = await http('POST', `${base}/v1/webhooks/custom/acme-hmac`, body, { 'content-type': 'application/json', 'x-acme-signature': sig.replace(/^./, '0') === sig ? sig.replace(/^./, '1') : sig.replace(/^./, '0') });
    expect(bad.status).toBe(401);
    const missing = await http('POST', `${base}/v1/webhooks/custom/acme-hmac`, body, { 'content-type': 'application/json' });
    expect([missing.status, missing.json.error.message]).toEqual([400, expect.stringContaining('X-Acme-Signature')]);

    const ts = Math.floor(Date.now() / 1000);
    const std = standardWebhookHeaders(STD_SECRET, 'msg_1', ts, body);
    const s1 = await http('POST', `${base}/v1/webhooks/custom/acme-std`, body, { 'content-type': 'application/json', ...std });
    const s2 = await http('POST', `${base}/v1/webhooks/custom/acme-std`, body, { 'content-type': 'application/json', ...std });
    expect([s1.status, s2.status]).toEqual([202, 200]);
    const old = standardWebhookHeaders(STD_SECRET, 'msg_2', ts - 3600, body);
    const stale = await http('POST', `${base}/v1/webhooks/custom/acme-std`, body, { 'content-type': 'application/json', ...old });
    expect(stale.status).toBe(401);

    const open = await postJson(`${base}/v1/webhooks/custom/open`, { n: 1 });
    expect(open.status).toBe(202);
    const invalid = await postJson(`${base}/v1/webhooks/custom/open`, { m: 1 });
    expect([invalid.status, invalid.json.error.details.errors[0].path]).toEqual([422, '/n']);
    const unknown = await postJson(`${base}/v1/webhooks/custom/nope`, {});
    expect([unknown.status, unknown.json.error.code]).toEqual([404, 'E_UNKNOWN_WEBHOOK']);
    expect(counts().deliveries).toBe(3);
  });

  it('replays an execution from its stored event as a new execution', async () => {
    await start();
    const res = await postJson(`${base}/v1/run/event`, { event: 'acme.order.requested', data: { email: 'r@b.co' } });
    const id = res.json.executions[0].id;
    await http('GET', `${base}/v1/executions/${id}?wait=5000`);
    const replay = await http('POST', `${base}/v1/executions/${id}/replay`, '{}', JSON_TYPE);
    expect(replay.status).toBe(202);
    const newId = replay.json.executions[0].id;
    expect(newId).not.toBe(id);
    const got = await http('GET', `${base}/v1/executions/${newId}?wait=5000`);
    expect(got.json.execution).toMatchObject({ status: 'succeeded', replayOf: id, deliveryId: res.json.deliveryId });
    expect(got.json.execution.record.event).toEqual({ email: 'r@b.co' });
    const missing = await http('POST', `${base}/v1/executions/ex_nope/replay`, '{}', JSON_TYPE);
    expect(missing.status).toBe(404);
  });

  it('serves only ingress routes on the ingress listener', async () => {
    await start();
    const ingress = await server.listenIngress();
    expect(ingress).not.toBe(base);
    expect((await http('GET', `${ingress}/v1/executions`)).status).toBe(404);
    expect((await http('GET', `${ingress}/healthz`)).status).toBe(404);
    expect((await http('POST', `${ingress}/v1/executions/x/replay`)).status).toBe(404);
    const body = JSON.stringify({ event: 'acme.order.requested', data: { email: 'a@b.co' } });
    const signed = signIngress(JSON_TYPE, body, INGRESS_SECRET);
    expect((await http('POST', `${ingress}/v1/run/event`, body, signed)).status).toBe(202);
  });

  it('records accepted deliveries as fixtures with --record', async () => {
    const dir = path.join(tmp.dir, 'rec');
    await start({ recordDir: dir });
    const headers = shopifyWebhookHeaders({ topic: 'orders/create', shop: 'acme.myshopify.com', apiVersion: '2025-10', body: orderPayload, secret: SECRET });
    await http('POST', `${base}/v1/webhooks/shopify`, orderPayload, headers);
    // The fixture is written after the answer: poll until it is there and complete.
    const fx = await waitFor(() => {
      try {
        const found = readdirSync(dir);
        return found.length > 0 ? JSON.parse(readFileSync(path.join(dir, found[0]), 'utf8')) : undefined;
      } catch {
        return undefined; // no folder yet, or the file is half written
      }
    }, 'the recorded fixture');
    expect(readdirSync(dir)).toHaveLength(1);
    expect(fx).toMatchObject({ alloyFixture: 1, source: 'shopify', name: 'orders/create', path: '/v1/webhooks/shopify' });
    expect(Buffer.from(fx.body).equals(orderPayload)).toBe(true);
    expect(fx.headers['x-shopify-topic']).toBe('orders/create');
  });

  it('checkpoints work in flight at close and resumes it on the next start without repeating finished steps', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const held = fakeExecutor({ gate });
    await start({ executor: held, shutdownGraceMs: 50 });
    const res = await postJson(`${base}/v1/run/event`, { event: 'acme.order.requested', data: { email: 'a@b.co' } });
    const id = res.json.executions[0].id;
    await waitFor(() => held.calls.length > 0, 'the executor to start step a');
    expect(held.calls).toEqual([{ id, step: 'a' }]);
    await Promise.all([server.close(), server.close()]);
    release();
    // Next start, same log file: the execution resumes from its last checkpoint.
    await start();
    const got = await http('GET', `${base}/v1/executions/${id}?wait=5000`);
    expect(got.json.execution.status).toBe('succeeded');
    // Step a was in flight at the close (no checkpoint after it), so it runs again; nothing else repeats.
    expect(fake.calls.map((c) => c.step)).toEqual(['a', 'b']);
  });

  it('an execution whose delivery body is gone fails with E_EVENT_LOG_DAMAGED on resume instead of running on an empty event; viewing it still works', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const held = fakeExecutor({ gate });
    await start({ executor: held, shutdownGraceMs: 50 });
    const headers = shopifyWebhookHeaders({ topic: 'orders/create', shop: 'acme.myshopify.com', apiVersion: '2025-10', body: orderPayload, secret: SECRET });
    const res = await http('POST', `${base}/v1/webhooks/shopify`, orderPayload, headers);
    const id = res.json.executions[0].id;
    await waitFor(() => held.calls.length > 0, 'the executor to start');
    await server.close();
    release();
    // The 28 KB body lives in the body file; remove it, as a user cleaning .alloy/ might.
    const { rmSync } = await import('node:fs');
    rmSync(path.join(tmp.dir, 'dev.sqlite-bodies'));
    await start();
    const got = await http('GET', `${base}/v1/executions/${id}?wait=5000`);
    expect(got.status).toBe(200);
    expect(got.json.execution.status).toBe('failed');
    expect(got.json.execution.record.error.code).toBe('E_EVENT_LOG_DAMAGED');
    expect(got.json.execution.delivery.source).toBe('shopify');
    expect(fake.calls).toEqual([]);
  });

  it('stores a checkpoint only after steps with effects outside the process (pure steps re-run after a crash)', async () => {
    const { hasSideEffects } = await import('../../src/server/runtime-server.js');
    const step = (kind: string, uses?: string) => ({ path: 'x', id: 'x', kind, uses, status: 'succeeded', attempts: 1, startedAt: '' }) as any;
    expect(hasSideEffects(step('action', 'transform'))).toBe(false);
    expect(hasSideEffects(step('if'))).toBe(false);
    expect(hasSideEffects(step('action', 'http'))).toBe(true);
    expect(hasSideEffects(step('action', 'shopify/createOrder'))).toBe(true);
    expect(hasSideEffects(step('delay'))).toBe(true);

    // An executor whose first step is a transform: its checkpoint is not written, the http one
    // is (both steps, as step rows, without waiting for the disk); then it pauses, so that
    // write lands before the final record replaces it.
    const saved: string[] = [];
    let pause!: () => void;
    const paused = new Promise<void>((r) => (pause = r));
    let resume!: () => void;
    const resumed = new Promise<void>((r) => (resume = r));
    const mixed: typeof fake.executor = async (wf, record, { checkpoint }) => {
      record.status = 'running';
      for (const s of wf.def.steps as any[]) {
        record.steps[s.id] = { path: s.id, id: s.id, kind: 'action', uses: s.uses, status: 'succeeded', attempts: 1, startedAt: '', endedAt: '' };
        await checkpoint(record, [record.steps[s.id]]);
      }
      pause();
      await resumed;
      record.status = 'succeeded';
      return record;
    };
    server = createRuntimeServer({
      log: openEventLog({ file: path.join(tmp.dir, 'dev.sqlite') }),
      definitions: indexDefinitions(projectOf(tmp.dir, [workflow('mixed', { event: 'mixed' }, [{ id: 't', uses: 'transform', with: {} }, { id: 'h', uses: 'http', with: {} }])])),
      executor: mixed,
    });
    base = await server.listen();
    const log = server.log as any;
    const origProgress = log.saveProgress.bind(log);
    log.saveProgress = (r: any, steps: any[]) => {
      saved.push(`progress ${steps.map((x) => x.path).join(',')}`);
      return origProgress(r, steps);
    };
    const origSave = log.saveRecord.bind(log);
    log.saveRecord = (r: any, e?: any) => {
      saved.push(`record ${Object.keys(r.steps).join(',')}`);
      return origSave(r, e);
    };
    const res = await postJson(`${base}/v1/run/event`, { event: 'mixed', data: {} });
    const id = res.json.executions[0].id;
    await paused;
    // The progress write goes out with the next group commit: then the stored execution shows both steps.
    await waitFor(() => Object.keys((server.log.getExecution(id)?.record.steps ?? {}) as object).length === 2, 'the progress write');
    expect(server.log.getExecution(id)?.status).toBe('running');
    resume();
    const got = await http('GET', `${base}/v1/executions/${id}?wait=5000`);
    expect(got.json.execution.status).toBe('succeeded');
    // One progress write after the http step (both steps), then the final record.
    expect(saved).toEqual(['progress t,h', 'record t,h']);
    expect(Object.keys(got.json.execution.record.steps)).toEqual(['t', 'h']);
  });

  it('stores the "call in flight" mark of a non-idempotent action before the call is made', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let reached!: () => void;
    const atCall = new Promise<void>((r) => (reached = r));
    // Like the engine before shopify/createOrder: a running step marked callInFlight, then the call.
    const creating: typeof fake.executor = async (_wf, record, { checkpoint }) => {
      record.status = 'running';
      record.steps.order = { path: 'order', id: 'order', kind: 'action', uses: 'shopify/createOrder', status: 'running', attempts: 0, inputs: { lineItems: [] }, callInFlight: true, startedAt: '' };
      await checkpoint(record);
      reached();
      await gate;
      record.steps.order = { ...record.steps.order, status: 'succeeded', attempts: 1, endedAt: '' };
      delete record.steps.order.callInFlight;
      await checkpoint(record);
      record.status = 'succeeded';
      return record;
    };
    server = createRuntimeServer({
      log: openEventLog({ file: path.join(tmp.dir, 'dev.sqlite') }),
      definitions: indexDefinitions(projectOf(tmp.dir, [workflow('orders', { event: 'orders' }, [{ id: 'order', uses: 'transform', with: {} }])])),
      executor: creating,
    });
    base = await server.listen();
    const res = await postJson(`${base}/v1/run/event`, { event: 'orders', data: {} });
    await atCall;
    const stored = server.log.getExecution(res.json.executions[0].id) as any;
    expect(stored.record.steps.order).toMatchObject({ status: 'running', callInFlight: true });
    release();
    const got = await http('GET', `${base}/v1/executions/${res.json.executions[0].id}?wait=5000`);
    expect(got.json.execution.status).toBe('succeeded');
  });

  it('answers 503 with Retry-After past the queue limit, stores nothing then, and accepts again once drained', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    fake = fakeExecutor({ gate });
    events = [];
    server = createRuntimeServer({
      log: openEventLog({ file: path.join(tmp.dir, 'dev.sqlite') }),
      definitions: indexDefinitions(projectOf(tmp.dir, workflows)),
      executor: fake.executor,
      secrets: { SHOPIFY_API_SECRET: SECRET },
      concurrency: 1,
      maxQueued: 3,
      onEvent: (e) => events.push(e),
    });
    base = await server.listen();
    const send = () => postJson(`${base}/v1/run/event`, { event: 'acme.order.requested', data: { email: 'a@b.co' } });
    // One running, three queued: the limit.
    for (let i = 0; i < 4; i++) expect((await send()).status).toBe(202);
    await waitFor(() => server.queueSize().running === 1, 'one running');
    expect(server.queueSize().queued).toBe(3);
    const refused = await send();
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('1');
    expect(refused.json.error.code).toBe('E_OVERLOADED');
    // Webhooks too, before their signature is even checked; and nothing was stored.
    const hook = await http('POST', `${base}/v1/webhooks/shopify`, orderPayload, { 'content-type': 'application/json' });
    expect(hook.status).toBe(503);
    expect(server.log.countDeliveries()).toBe(4);
    expect(events.filter((e) => e.type === 'rejected' && e.code === 'E_OVERLOADED')).toHaveLength(1);
    // The API stays up, and the queue drains.
    expect((await http('GET', `${base}/healthz`)).status).toBe(200);
    release();
    await waitFor(() => server.queueSize().queued === 0 && server.queueSize().running === 0, 'the queue to drain');
    expect((await send()).status).toBe(202);
  });

  it('fails an execution whose workflow disappeared, and lists it with its error', async () => {
    await start();
    const res = await postJson(`${base}/v1/run/event`, { event: 'acme.order.requested', data: { email: 'a@b.co' } });
    await http('GET', `${base}/v1/executions/${res.json.executions[0].id}?wait=5000`);
    server.setDefinitions(indexDefinitions(projectOf(tmp.dir, [])));
    const replay = await http('POST', `${base}/v1/executions/${res.json.executions[0].id}/replay`, '{}', JSON_TYPE);
    expect([replay.status, replay.json.error.code]).toEqual([409, 'E_WORKFLOW_NOT_FOUND']);
    const unmatched = await postJson(`${base}/v1/run/event`, { event: 'acme.order.requested', data: {} });
    expect(unmatched.status).toBe(202);
    expect(unmatched.json.executions).toEqual([]);
  });
});
