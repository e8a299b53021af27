/**
 * The web UI's data layer (ui/src/api.ts) against a real runtime server on 127.0.0.1:
 * JSON with its content type on every state-changing call, a bearer token when given,
 * cursor paging, replay (plain and edited), and the event stream. Plus the normalisers
 * that let the same views read `alloy serve`'s list and execution shapes.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { createApi, normalizeExecution, normalizePage } from '../../ui/src/api.js';
import { openEventLog } from '../../src/server/event-log.js';
import { indexDefinitions } from '../../src/server/definitions.js';
import { createRuntimeServer, type RuntimeServer } from '../../src/server/runtime-server.js';
import { fakeExecutor, postJson, projectOf, tempDir, waitFor, workflow } from '../server/helpers.js';

describe('ui data layer against the runtime', () => {
  let tmp: ReturnType<typeof tempDir>;
  let server: RuntimeServer;
  let base: string;
  beforeEach(async () => {
    tmp = tempDir();
    server = createRuntimeServer({
      log: openEventLog({ file: path.join(tmp.dir, 'dev.sqlite') }),
      definitions: indexDefinitions(projectOf(tmp.dir, [workflow('w', { event: 'e' })])),
      executor: fakeExecutor().executor,
    });
    base = await server.listen();
  });
  afterEach(async () => {
    await server.close();
    tmp.cleanup();
  });

  it('pages, replays (plain and edited) and follows the stream', async () => {
    const api = createApi({ base });
    const seen: string[] = [];
    const states: boolean[] = [];
    const stop = api.subscribe((m) => seen.push(m.event), (c) => states.push(c));
    await waitFor(() => states.includes(true), 'the stream to open');
    for (let i = 0; i < 3; i++) await postJson(`${base}/v1/run/event`, { event: 'e', data: { i } });
    await waitFor(() => seen.filter((e) => e === 'execution').length >= 6 || undefined, 'accepted and finished summaries');
    const first = await api.listExecutions({ limit: 2 });
    expect(first.executions).toHaveLength(2);
    const second = await api.listExecutions({ limit: 2, cursor: first.nextCursor });
    expect(second.executions).toHaveLength(1);
    expect(second.nextCursor).toBeUndefined();
    const id = second.executions[0].id;
    const plain = await api.replay(id);
    const edited = await api.replay(id, { i: 99 });
    const ex = await api.getExecution(edited.executions[0].id);
    expect(ex.replayOf).toBe(id);
    expect(ex.record.event).toEqual({ i: 99 });
    expect(plain.executions[0].replayOf).toBe(id);
    stop();
  });

  it('sends JSON with its content type and the bearer token', async () => {
    const requests: { method: string; url: string; headers: http.IncomingHttpHeaders; body: string }[] = [];
    const stub = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        requests.push({ method: req.method!, url: req.url!, headers: req.headers, body });
        res.writeHead(req.method === 'POST' ? 202 : 200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ deliveryId: 'dl_1', executions: [{ id: 'ex_2' }] }));
      });
    });
    await new Promise<void>((r) => stub.listen(0, '127.0.0.1', r));
    try {
      const api = createApi({ base: `http://127.0.0.1:${(stub.address() as AddressInfo).port}`, token: 'tok_123' });
      await api.replay('ex_1');
      await api.sendFixture('demo/w', 'a.json');
      await api.listExecutions({ status: 'failed' });
      for (const r of requests) expect(r.headers.authorization).toBe('Bearer tok_123');
      const posts = requests.filter((r) => r.method === 'POST');
      expect(posts.map((r) => [r.url, r.headers['content-type'], r.body])).toEqual([
        ['/v1/executions/ex_1/replay', 'application/json', '{}'],
        ['/v1/workflows/demo/w/send', 'application/json', '{"fixture":"a.json"}'],
      ]);
      expect(requests[2].url).toBe('/v1/executions?status=failed');
    } finally {
      stub.close();
    }
  });
});

describe('normalisers for the alloy serve shapes', () => {
  it('reads {items, next} pages like {executions, nextCursor}', () => {
    const s = { id: 'ex_1', workflow: 'a/w', status: 'succeeded' };
    expect(normalizePage({ items: [s], next: 'ex_1' })).toEqual({ executions: [s], nextCursor: 'ex_1' });
    expect(normalizePage({ items: [], next: null })).toEqual({ executions: [] });
    expect(normalizePage({ executions: [s], nextCursor: '9' })).toEqual({ executions: [s], nextCursor: '9' });
  });

  it('reads a flat execution view with a step list and rerunOf', () => {
    const step = { path: 'order', id: 'order', kind: 'action', status: 'failed', attempts: 2, error: { code: 'E', message: 'no' } };
    const e = normalizeExecution({ id: 'ex_2', workflow: 'a/w', status: 'failed', version: 3, rerunOf: 'ex_1', steps: [step], createdAt: 't', updatedAt: 't' });
    expect(e.replayOf).toBe('ex_1');
    expect(e.record.steps).toEqual({ order: step });
    expect(e.record.version).toBe('v3');
    const dev = { execution: { id: 'ex_3', record: { event: {}, steps: {} } } };
    expect(normalizeExecution(dev)).toBe(dev.execution);
  });
});
