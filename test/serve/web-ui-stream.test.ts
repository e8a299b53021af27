/**
 * GET /v1/stream in `alloy serve`: executions arrive as server-sent events read from the
 * state, so rows another process writes (here: a second handle on the same SQLite file)
 * arrive too; a user token's stream carries only that user's; the stream ends when its key
 * is deleted; the web UI's files are served at `/` marked as serve's.
 */
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSseParser, type SseMessage } from '../../src/net/sse.js';
import { newId } from '../../src/server/ids.js';
import { openSqliteState } from '../../src/serve/state/sqlite-state.js';
import { createLiveFeed } from '../../src/serve/live-feed.js';
import { HttpError } from '../../src/http/error.js';
import { openPgState } from '../../src/serve/state/pg-state.js';
import { assertPgReachable, describePg, dropSchemas, freshSchema, PG_URL } from '../helpers/pg.js';
import type { ExecutionRow, ServeState } from '../../src/serve/state/types.js';
import type { ExecutionRecord } from '../../src/engine/types.js';
import { call, cleanup, startTestServe, waitFor, type TestServe } from './helpers.js';

interface Stream {
  messages: SseMessage[];
  status: number;
  ended: Promise<void>;
  stop(): void;
}

async function openStream(url: string, token: string): Promise<Stream> {
  const abort = new AbortController();
  const res = await fetch(`${url}/v1/stream`, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' }, signal: abort.signal });
  const messages: SseMessage[] = [];
  const feed = createSseParser((m) => messages.push(m));
  const ended = (async () => {
    if (!res.body) return;
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        feed(value);
      }
    } catch {
      /* aborted */
    }
  })();
  return { messages, status: res.status, ended, stop: () => abort.abort() };
}

function row(userId: string, installationId: string, laterMs = 0): ExecutionRow {
  // Ids sort by their millisecond; within one, by chance.
  const id = newId('ex', Date.now() + laterMs);
  const at = new Date().toISOString();
  const record: ExecutionRecord = { id, workflow: 'shopify-sync/create-order', version: 'v1', userId, event: { orderId: id }, status: 'queued', createdAt: at, steps: {} };
  return { id, installationId, userId, integration: 'shopify-sync', version: 1, workflow: record.workflow, status: 'queued', record, createdAt: at, updatedAt: at };
}

const executionsOf = (s: Stream) => s.messages.filter((m) => m.event === 'execution').map((m) => JSON.parse(m.data) as { id: string; status: string; userId: string });

/** Two users' executions written through `other` (another process's handle on the same database) reach the streams of `serve`. */
async function expectLiveFromAnotherProcess(serve: TestServe, other: ServeState, streams: Stream[]): Promise<void> {
  for (const id of ['ann', 'bob']) {
  const u = await call(serve.url, 'POST', '/v1/users', { token: serve.admin, body: { id } });
  expect([201, 409]).toContain(u.status);
  }
  const admin = await openStream(serve.url, serve.admin);
  const annToken = (await call(serve.url, 'POST', '/v1/users/ann/token', { token: serve.admin })).body.token as string;
  const ann = await openStream(serve.url, annToken);
  streams.push(admin, ann);
  expect(admin.status).toBe(200);
  expect(ann.status).toBe(200);
  // Let both polls prime (they start at the newest execution, not at the beginning).
  await new Promise((r) => setTimeout(r, 700));

  const forAnn = row('ann', 'inst_a');
  const forBob = row('bob', 'inst_b');
  await other.executions.ingest({ executions: [forAnn, forBob] });
  await waitFor(() => executionsOf(admin).filter((e) => e.status === 'queued').length === 2, 'both queued executions on the admin stream');
  await other.executions.checkpoint(forAnn.id, { ...forAnn.record, status: 'succeeded', endedAt: new Date().toISOString(), durationMs: 5 });
  await waitFor(() => executionsOf(admin).some((e) => e.id === forAnn.id && e.status === 'succeeded'), 'the finished execution on the admin stream');
  await waitFor(() => executionsOf(ann).some((e) => e.id === forAnn.id && e.status === 'succeeded'), "ann's execution on ann's stream");
  // Each change once; bob's execution never reaches ann.
  expect(executionsOf(admin).map((e) => `${e.id}:${e.status}`).sort()).toEqual([`${forAnn.id}:queued`, `${forAnn.id}:succeeded`, `${forBob.id}:queued`].sort());
  expect(executionsOf(ann).every((e) => e.userId === 'ann')).toBe(true);
  expect(executionsOf(ann).some((e) => e.id === forBob.id)).toBe(false);
}

describe('alloy serve: the live stream and the web UI files', () => {
  let serve: TestServe;
  let other: ServeState;
  const streams: Stream[] = [];

  beforeAll(async () => {
    serve = await startTestServe();
    // Another serve process's view of the same database.
    other = openSqliteState(path.join(serve.dataDir, 'serve.db'));
  });

  afterAll(async () => {
    for (const s of streams) s.stop();
    await other?.close();
    await serve?.close();
    cleanup();
  });

  it('sends executions written by another process, as they are created and as they change, scoped to a user token', async () => {
    await expectLiveFromAnotherProcess(serve, other, streams);
  });

  it('follows an execution that was already running when the stream opened to its end', async () => {
    const old = row('bob', 'inst_b', -60_000);
    await other.executions.ingest({ executions: [old] });
    await other.executions.checkpoint(old.id, { ...old.record, status: 'running' });
    // Newer ones: the old one is far below the look-back window.
    await other.executions.ingest({ executions: [row('bob', 'inst_b')] });
    // Every stream closed, so the poller starts afresh with this one.
    for (const open of streams) open.stop();
    await new Promise((r) => setTimeout(r, 300));
    const s = await openStream(serve.url, serve.admin);
    streams.push(s);
    await new Promise((r) => setTimeout(r, 700));
    await other.executions.checkpoint(old.id, { ...old.record, status: 'failed', error: { code: 'E_X', message: 'no' } });
    await waitFor(() => executionsOf(s).some((e) => e.id === old.id && e.status === 'failed'), 'the old execution ending on the stream');
  });

  it('refuses a wrong token, an ingest key, and an unknown order', async () => {
    const wrong = await fetch(`${serve.url}/v1/stream`, { headers: { authorization: 'Bearer alk_admin_nope' } });
    expect(wrong.status).toBe(401);
    expect(((await wrong.json()) as any).error.code).toBe('E_UNAUTHORIZED');
    const ingest = await fetch(`${serve.url}/v1/stream`, { headers: { authorization: `Bearer ${await serve.key('ingest')}` } });
    expect(ingest.status).toBe(403);
    await ingest.body?.cancel();
    expect((await call(serve.url, 'GET', '/v1/executions?order=sideways', { token: serve.admin })).status).toBe(400);
  });

  it('lists executions newest first with order=desc, paged downwards', async () => {
    const rows = [row('bob', 'inst_b', 1), row('bob', 'inst_b', 2), row('bob', 'inst_b', 3)];
    for (const r of rows) await other.executions.ingest({ executions: [r] });
    const p1 = await call(serve.url, 'GET', '/v1/executions?userId=bob&order=desc&limit=2', { token: serve.admin });
    const ids = rows.map((r) => r.id).reverse();
    expect(p1.body.items.map((e: { id: string }) => e.id)).toEqual(ids.slice(0, 2));
    const p2 = await call(serve.url, 'GET', `/v1/executions?userId=bob&order=desc&limit=2&cursor=${p1.body.next}`, { token: serve.admin });
    expect(p2.body.items.map((e: { id: string }) => e.id)).toEqual([ids[2], expect.any(String)]);
  });

  it('ends a stream with an error event once its credentials are refused (checked each heartbeat)', async () => {
    let valid = true;
    const feed = createLiveFeed({
      state: other,
      heartbeatMs: 100,
      authenticate: async () => {
        if (!valid) throw new HttpError(401, 'E_UNAUTHORIZED', 'unknown or expired token');
        return { kind: 'key', role: 'read', keyId: 'k1' };
      },
    });
    const server = http.createServer((req, res) => feed.subscribe(req, res, { kind: 'key', role: 'read', keyId: 'k1' }));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const s = await openStream(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, 'alk_read_x');
      streams.push(s);
      await new Promise((r) => setTimeout(r, 300));
      expect(feed.size).toBe(1);
      valid = false;
      await s.ended;
      const err = s.messages.find((m) => m.event === 'error');
      expect(JSON.parse(err!.data)).toMatchObject({ code: 'E_UNAUTHORIZED', message: 'unknown or expired token' });
      expect(feed.size).toBe(0);
    } finally {
      feed.close();
      server.close();
    }
  });

  it('ends the stream of a client that stops reading instead of buffering its events without bound', async () => {
    // A state whose every poll brings 200 new executions with long names: ~2 MB a poll.
    let n = 0;
    const big = 'w'.repeat(10_000);
    const page = () => ({
      items: Array.from({ length: 200 }, () => {
        const id = newId('ex', Date.now() + n++);
        const at = new Date().toISOString();
        return { id, userId: 'u', installationId: 'i', integration: 'x', version: 'v1', workflow: big, status: 'queued', createdAt: at, updatedAt: at, record: {} } as unknown as ExecutionRow;
      }),
    });
    let primed = false;
    const state = {
      executions: {
        list: async (_f: unknown, p: { after?: string }) => {
          if (!primed) {
            primed = true;
            return { items: [] };
          }
          return p.after === 'end' ? { items: [] } : { ...page(), next: undefined };
        },
        unfinished: async () => [],
        get: async () => undefined,
      },
    } as unknown as ServeState;
    const feed = createLiveFeed({ state, pollMs: 20, heartbeatMs: 60_000, authenticate: async () => ({ kind: 'key', role: 'read', keyId: 'k1' }) });
    let response: http.ServerResponse | undefined;
    const server = http.createServer((req, res) => {
      response = res;
      feed.subscribe(req, res, { kind: 'key', role: 'read', keyId: 'k1' });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const socket = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
    try {
      socket.write('GET /v1/stream HTTP/1.1\r\nHost: x\r\n\r\n');
      socket.pause(); // never reads: the kernel buffers fill, then Node's
      await waitFor(() => feed.size === 1, 'the subscriber');
      let most = 0;
      await waitFor(() => {
        most = Math.max(most, response?.writableLength ?? 0);
        return feed.size === 0 || most > 64 * 1024 * 1024;
      }, 'the stalled stream to end', 20_000);
      expect(feed.size).toBe(0);
      expect(most).toBeLessThan(8 * 1024 * 1024);
    } finally {
      socket.destroy();
      feed.close();
      server.close();
    }
  });

  it('serves the web UI at / with a strict CSP, marked as served by serve', async () => {
    const res = await fetch(`${serve.url}/`);
    if (res.status === 404) {
      // Without a build there is no UI to serve; the answer says how to get one.
      expect(((await res.json()) as any).error.code).toBe('E_UI_NOT_BUILT');
      return;
    }
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
    const html = await res.text();
    expect(html).toContain('<meta name="alloy-runtime" content="serve" />');
    const asset = /src="\.\/(assets\/[^"]+\.js)"/.exec(html)![1];
    expect((await fetch(`${serve.url}/${asset}`)).status).toBe(200);
    expect((await fetch(`${serve.url}/assets/..%2Fserve.db`)).status).toBe(404);
  });
});

describePg('alloy serve on PostgreSQL: the live stream reads the shared database', () => {
  let serve: TestServe;
  let other: ServeState;
  const streams: Stream[] = [];

  beforeAll(async () => {
    assertPgReachable();
    const schema = freshSchema('stream');
    // Two handles on one schema: the server's, and another serve process's.
    serve = await startTestServe({ state: await openPgState({ url: PG_URL, schema, poolSize: 4 }) });
    other = await openPgState({ url: PG_URL, schema, poolSize: 2 });
  });

  afterAll(async () => {
    for (const s of streams) s.stop();
    await other?.close();
    await serve?.close();
    await dropSchemas();
    cleanup();
  });

  it('sends executions another process writes, as they are created and as they change, scoped to a user token', async () => {
    await expectLiveFromAnotherProcess(serve, other, streams);
  });
});
