/**
 * The runtime routes the web UI uses: cursor-paged and filtered executions, the SSE stream
 * (/v1/stream), replay with an edited event, workflows with their fixtures and sending one,
 * and the UI's own assets (content types, CSP, never on the ingress listener).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { request } from 'undici';
import { openEventLog } from '../../src/server/event-log.js';
import { indexDefinitions } from '../../src/server/definitions.js';
import { createRuntimeServer, type RuntimeServer } from '../../src/server/runtime-server.js';
import { createSseParser, formatSse, type SseMessage } from '../../src/net/sse.js';
import { UI_CSP, createUiAssets } from '../../src/server/ui-assets.js';
import { fakeExecutor, http, postJson, projectOf, tempDir, waitFor, workflow } from './helpers.js';

const workflows = [
  workflow('create-order', { event: 'acme.order.requested', schema: { type: 'object', required: ['email'], properties: { email: { type: 'string' } } } }),
  workflow('order-created', { app: 'shopify', event: 'orders/create' }),
  workflow('hook', { webhook: 'open' }),
];

/** Opens GET /v1/stream and collects its events until close(). */
async function openStream(url: string, headers: Record<string, string> = {}) {
  const messages: SseMessage[] = [];
  const ac = new AbortController();
  const res = await request(url, { headers, signal: ac.signal, bodyTimeout: 0 });
  const feed = createSseParser((m) => messages.push(m));
  res.body.setEncoding('utf8');
  void (async () => {
    try {
      for await (const chunk of res.body) feed(chunk as unknown as string);
    } catch {
      /* aborted */
    }
  })();
  return { res, messages, close: () => ac.abort() };
}

describe('SSE parser', () => {
  it('parses events split anywhere, with ids, multi-line data and comments', () => {
    const out: SseMessage[] = [];
    const feed = createSseParser((m) => out.push(m));
    const wire = `: hello\n\n${formatSse({ event: 'log', id: 7, data: 'a\nb' })}${formatSse({ data: '{"x":1}' })}`.replace(/\n/g, '\r\n');
    for (const ch of wire) feed(ch);
    expect(out).toEqual([
      { event: 'log', id: '7', data: 'a\nb' },
      { event: 'message', data: '{"x":1}' },
    ]);
  });
});

describe('runtime API for the web UI', () => {
  let tmp: ReturnType<typeof tempDir>;
  let server: RuntimeServer;
  let base: string;

  beforeEach(async () => {
    tmp = tempDir();
    const fixtures = path.join(tmp.dir, 'integrations', 'demo', 'fixtures');
    mkdirSync(fixtures, { recursive: true });
    writeFileSync(path.join(fixtures, 'acme-order-requested.json'), JSON.stringify({ email: 'ada@example.com' }));
    writeFileSync(path.join(fixtures, 'orders-create.json'), JSON.stringify({ id: 42, name: '#1001' }));
    writeFileSync(path.join(tmp.dir, 'outside.json'), JSON.stringify({ email: 'secret@example.com' }));
    symlinkSync(path.join(tmp.dir, 'outside.json'), path.join(fixtures, 'linked.json'));
    server = createRuntimeServer({
      log: openEventLog({ file: path.join(tmp.dir, 'dev.sqlite') }),
      definitions: indexDefinitions(projectOf(tmp.dir, workflows)),
      executor: fakeExecutor({ fail: (r) => (r.event as { fail?: boolean })?.fail === true }).executor,
    });
    base = await server.listen();
  });
  afterEach(async () => {
    await server?.close();
    tmp.cleanup();
  });

  const emit = (data: unknown) => postJson(`${base}/v1/run/event`, { event: 'acme.order.requested', data });
  const settle = (n: number) => waitFor(() => server.log.listExecutions({ limit: 1000 }).filter((e) => ['succeeded', 'failed'].includes(e.status)).length >= n || undefined, `${n} finished`);

  it('pages executions with a cursor, newest first, without repeating or skipping', async () => {
    for (let i = 0; i < 7; i++) expect((await emit({ email: `u${i}@example.com` })).status).toBe(202);
    await settle(7);
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const r = await http('GET', `${base}/v1/executions?limit=3${cursor ? `&cursor=${cursor}` : ''}`);
      expect(r.status).toBe(200);
      expect(r.json.executions.length).toBeLessThanOrEqual(3);
      seen.push(...r.json.executions.map((e: { id: string }) => e.id));
      cursor = r.json.nextCursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen).toEqual(server.log.listExecutions({ limit: 100 }).map((e) => e.id));
    expect((await http('GET', `${base}/v1/executions?cursor=abc`)).status).toBe(400);
  });

  it('filters by status, workflow, time and id prefix', async () => {
    await emit({ email: 'a@example.com' });
    await emit({ email: 'b@example.com', fail: true });
    await settle(2);
    const all = server.log.listExecutions({ limit: 10 });
    const failed = await http('GET', `${base}/v1/executions?status=failed`);
    expect(failed.json.executions.map((e: { id: string }) => e.id)).toEqual([all[0].id]);
    expect((await http('GET', `${base}/v1/executions?workflow=demo/create-order`)).json.executions).toHaveLength(2);
    expect((await http('GET', `${base}/v1/executions?workflow=demo/hook`)).json.executions).toHaveLength(0);
    const future = new Date(Date.now() + 60_000).toISOString();
    expect((await http('GET', `${base}/v1/executions?since=${encodeURIComponent(future)}`)).json.executions).toHaveLength(0);
    expect((await http('GET', `${base}/v1/executions?until=${encodeURIComponent(future)}`)).json.executions).toHaveLength(2);
    expect((await http('GET', `${base}/v1/executions?since=yesterday`)).status).toBe(400);
    const byId = await http('GET', `${base}/v1/executions?id=${all[1].id.slice(0, -2)}`);
    expect(byId.json.executions.map((e: { id: string }) => e.id)).toContain(all[1].id);
    expect((await http('GET', `${base}/v1/executions?id=zz_nothing`)).json.executions).toHaveLength(0);
  });

  it('streams execution summaries, steps and log entries as server-sent events', async () => {
    const s = await openStream(`${base}/v1/stream`);
    expect(s.res.statusCode).toBe(200);
    expect(s.res.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    const accepted = await emit({ email: 'live@example.com' });
    const id = accepted.json.executions[0].id;
    await waitFor(() => s.messages.find((m) => m.event === 'execution' && JSON.parse(m.data).id === id && JSON.parse(m.data).status === 'succeeded'), 'the finished summary');
    expect(s.messages.find((m) => m.event === 'execution' && JSON.parse(m.data).id === id)).toBeDefined();
    expect(s.messages.some((m) => m.event === 'step' && JSON.parse(m.data).executionId === id)).toBe(true);
    const logMsg = await waitFor(() => s.messages.find((m) => m.event === 'log' && JSON.parse(m.data).executionId === id), 'the log entry');
    expect(Number(logMsg.id)).toBe(JSON.parse(logMsg.data).seq);
    s.close();
    // A client that reconnects with Last-Event-ID gets what it missed, and nothing before.
    await emit({ email: 'missed@example.com' });
    await settle(2);
    const again = await openStream(`${base}/v1/stream`, { 'last-event-id': logMsg.id! });
    const missed = await waitFor(() => {
      const logs = again.messages.filter((m) => m.event === 'log');
      return logs.length > 0 ? logs : undefined;
    }, 'missed entries');
    expect(missed.every((m) => Number(m.id) > Number(logMsg.id))).toBe(true);
    expect(missed.some((m) => JSON.parse(m.data).executionId !== id)).toBe(true);
    again.close();
    expect((await http('GET', `${base}/v1/stream?after=x`)).status).toBe(400);
  });

  it('announces a hot reload of the definitions on the stream', async () => {
    const s = await openStream(`${base}/v1/stream`);
    await waitFor(() => s.res.statusCode === 200 || undefined);
    server.setDefinitions(indexDefinitions(projectOf(tmp.dir, [...workflows, workflow('extra', { event: 'x' })])));
    const m = await waitFor(() => s.messages.find((x) => x.event === 'definitions'), 'the definitions event');
    expect(JSON.parse(m.data)).toMatchObject({ workflows: 4, version: server.definitions.version });
    s.close();
  });

  it('close() ends open streams instead of waiting for them', async () => {
    const s = await openStream(`${base}/v1/stream`);
    const started = Date.now();
    await server.close();
    expect(Date.now() - started).toBeLessThan(3000);
    s.close();
  });

  it('replays with an edited event (validated against the trigger schema) and keeps the original', async () => {
    const first = await emit({ email: 'old@example.com' });
    const id = first.json.executions[0].id;
    await settle(1);
    const bad = await postJson(`${base}/v1/executions/${id}/replay`, { event: { phone: '1' } });
    expect(bad.status).toBe(422);
    expect(bad.json.error.code).toBe('E_EVENT_SCHEMA');
    expect((await postJson(`${base}/v1/executions/${id}/replay`, { other: 1 })).status).toBe(422);
    expect((await http('POST', `${base}/v1/executions/${id}/replay`, '{"event":{}}', { 'content-type': 'text/plain' })).status).toBe(415);
    const r = await postJson(`${base}/v1/executions/${id}/replay`, { event: { email: 'new@example.com' } });
    expect(r.status).toBe(202);
    expect(r.json.edited).toBe(true);
    const replayId = r.json.executions[0].id;
    const done = await http('GET', `${base}/v1/executions/${replayId}?wait=5000`);
    expect(done.json.execution).toMatchObject({ status: 'succeeded', replayOf: id, record: { event: { email: 'new@example.com' } } });
    // The original keeps its event; a plain replay ({}) replays the stored one.
    expect((await http('GET', `${base}/v1/executions/${id}`)).json.execution.record.event).toEqual({ email: 'old@example.com' });
    const plain = await postJson(`${base}/v1/executions/${id}/replay`, {});
    const plainDone = await http('GET', `${base}/v1/executions/${plain.json.executions[0].id}?wait=5000`);
    expect(plainDone.json.execution.record.event).toEqual({ email: 'old@example.com' });
    expect(plainDone.json.execution.delivery).toMatchObject({ source: 'event', name: 'acme.order.requested' });
  });

  it('lists workflows with triggers and fixtures, and sends a fixture as a workflow\'s trigger', async () => {
    const w = await http('GET', `${base}/v1/workflows`);
    expect(w.status).toBe(200);
    const create = w.json.workflows.find((x: { key: string }) => x.key === 'demo/create-order');
    expect(create.trigger).toMatchObject({ kind: 'event', event: 'acme.order.requested' });
    expect(create.fixtures).toEqual(['acme-order-requested.json', 'orders-create.json']);
    const sent = await postJson(`${base}/v1/workflows/demo/create-order/send`, { fixture: 'acme-order-requested.json' });
    expect(sent.status).toBe(202);
    const ex = await http('GET', `${base}/v1/executions/${sent.json.executions[0].id}?wait=5000`);
    expect(ex.json.execution).toMatchObject({ workflow: 'demo/create-order', status: 'succeeded', record: { event: { email: 'ada@example.com' } } });
    expect(ex.json.execution.delivery).toMatchObject({ verification: 'fixture' });
    const shop = await postJson(`${base}/v1/workflows/demo/order-created/send`, { fixture: 'orders-create.json' });
    expect(shop.status).toBe(202);
    expect(shop.json.executions[0].workflow).toBe('demo/order-created');
    // Schema violations, unknown files, path tricks and links out of the folder are refused.
    expect((await postJson(`${base}/v1/workflows/demo/create-order/send`, { fixture: 'orders-create.json' })).status).toBe(422);
    expect((await postJson(`${base}/v1/workflows/demo/create-order/send`, { fixture: 'nope.json' })).status).toBe(404);
    expect((await postJson(`${base}/v1/workflows/demo/create-order/send`, { fixture: '../../outside.json' })).status).toBe(422);
    expect((await postJson(`${base}/v1/workflows/demo/create-order/send`, { fixture: 'linked.json' })).status).toBe(404);
    expect((await http('POST', `${base}/v1/workflows/demo/create-order/send`, '{"fixture":"acme-order-requested.json"}', { 'content-type': 'text/plain' })).status).toBe(415);
  });

  it('serves nothing of the UI or its API on the ingress (tunnel) listener', async () => {
    const ingress = await server.listenIngress();
    for (const p of ['/', '/index.html', '/v1/stream', '/v1/workflows', '/v1/executions']) {
      expect((await http('GET', `${ingress}${p}`)).status, p).toBe(404);
    }
    expect((await postJson(`${ingress}/v1/workflows/demo/create-order/send`, { fixture: 'acme-order-requested.json' })).status).toBe(404);
  });
});

describe('web UI assets', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => {
    tmp = tempDir();
    mkdirSync(path.join(tmp.dir, 'assets'));
    writeFileSync(path.join(tmp.dir, 'index.html'), '<!doctype html><title>t</title>');
    writeFileSync(path.join(tmp.dir, 'assets', 'index-abc.js'), 'export {}');
    writeFileSync(path.join(tmp.dir, 'assets', 'index-abc.css'), 'body{}');
  });
  afterEach(() => tmp.cleanup());

  async function serve(urlPath: string, assets = createUiAssets(tmp.dir)) {
    const { createServer } = await import('node:http');
    const srv = createServer((req, res) => {
      assets.serve(res, req.url!).catch((e: { status?: number }) => {
        res.writeHead(e.status ?? 500);
        res.end();
      });
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as { port: number }).port;
    try {
      return await http('GET', `http://127.0.0.1:${port}${urlPath}`);
    } finally {
      srv.close();
    }
  }

  it('answers with the right content types, a strict CSP and caching', async () => {
    const page = await serve('/');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['content-security-policy']).toBe(UI_CSP);
    expect(UI_CSP).toContain("default-src 'none'");
    expect(UI_CSP).toContain("script-src 'self'");
    expect(UI_CSP).not.toContain('unsafe');
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    expect(page.headers['cache-control']).toBe('no-cache');
    const js = await serve('/assets/index-abc.js');
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(js.headers['cache-control']).toContain('immutable');
    expect((await serve('/assets/index-abc.css')).headers['content-type']).toBe('text/css; charset=utf-8');
    expect((await serve('/assets/..%2f..%2fetc')).status).toBe(404);
    expect((await serve('/assets/missing.js')).status).toBe(404);
  });

  it('says how to build the UI when it is not built', async () => {
    const empty = tempDir();
    try {
      const assets = createUiAssets(empty.dir);
      await expect(assets.serve({} as never, '/')).rejects.toMatchObject({ code: 'E_UI_NOT_BUILT', hint: expect.stringContaining('npm run build') });
    } finally {
      empty.cleanup();
    }
  });
});
