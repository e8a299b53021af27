import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdir, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { WebSocket, WebSocketServer } from 'ws';
import { startRelayServer, type RelayServer, type RelayServerOptions } from '../../src/tunnel/relay-server.js';
import { connectRelay, type RelayTunnel } from '../../src/tunnel/relay-client.js';
import { parseRelayTokens } from '../../src/tunnel/relay-tokens.js';
import { startTunnel } from '../../src/tunnel/index.js';
import { AlloyError } from '../../src/errors.js';
import {
  captureLogger,
  freePort,
  loadHmacVector,
  post,
  shopifyHmac,
  startStandInDevServer,
  tempDir,
  waitFor,
  type HmacVector,
  type StandInDevServer,
} from './helpers.js';

const ALICE = 'alice-token-0123456789abcdef';
const BOB = 'bob-token-fedcba9876543210xyz';
const tokens = parseRelayTokens(`alice:${ALICE},bob:${BOB}`);
// Heartbeats generous enough that a loaded 2-core CI machine never misses one: only the
// heartbeat test itself uses tight ones. Reconnect backoff stays short so tests stay fast.
const fast = { heartbeatMs: 5_000, heartbeatTimeoutMs: 10_000, backoff: { initialMs: 40, maxMs: 200 }, random: () => 0.5 };

let vector: HmacVector;
let dir: string;
let cleanup: () => Promise<void>;
const toClose: Array<{ close(): Promise<void> }> = [];

beforeEach(async () => {
  vector = await loadHmacVector();
  ({ dir, cleanup } = await tempDir());
});

afterEach(async () => {
  for (const c of toClose.splice(0).reverse()) await c.close().catch(() => {});
  await cleanup();
});

async function relay(extra: Partial<RelayServerOptions> = {}): Promise<RelayServer> {
  const r = await startRelayServer({ dataDir: dir, tokens, requestTimeoutMs: 2_000, redeliverDelayMs: 50, ...extra });
  toClose.push(r);
  return r;
}

async function devServer(port = 0): Promise<StandInDevServer> {
  const s = await startStandInDevServer(vector.secret, port);
  toClose.push(s);
  return s;
}

async function client(r: { url: string }, localUrl: string, token = ALICE, extra: { name?: string; logger?: ReturnType<typeof captureLogger> } = {}): Promise<RelayTunnel> {
  const t = await connectRelay({ relayUrl: r.url.replace('http', 'ws'), token, localUrl, logger: extra.logger ?? captureLogger(), name: extra.name, ...fast });
  toClose.push(t);
  return t;
}

function shopifyHeaders(body: Buffer, secret: string, id = '123456789'): Record<string, string> {
  return { ...vector.headers, 'X-Shopify-Hmac-Sha256': shopifyHmac(secret, body), 'X-Shopify-Webhook-Id': id, 'content-type': 'application/json' };
}

describe('relay end to end', () => {
  it('one relay per data folder: a second is E_RELAY_LOCKED while the first runs (it would deliver the same queue again), and starts once the first has closed', async () => {
    const first = await relay();
    const second = startRelayServer({ dataDir: dir, tokens });
    await expect(second).rejects.toMatchObject({ code: 'E_RELAY_LOCKED' });
    await first.close();
    const third = await relay();
    expect(third.url).toMatch(/^http:/);
  });

  it('a data folder that is a link to a folder is used as given (the operator names it), as before the lock', async () => {
    const real = path.join(dir, 'volume');
    await mkdir(real);
    const link = path.join(dir, 'data-link');
    await symlink(real, link);
    const r = await relay({ dataDir: link });
    expect(r.url).toMatch(/^http:/);
    expect(await readdir(real)).toEqual(['queue']);
    expect(await readdir(path.join(real, 'queue'))).toContain('relay.lock');
  });

  it('the HMAC helper reproduces the Shopify vector', () => {
    expect(shopifyHmac(vector.secret, Buffer.from(vector.raw_body, 'utf8'))).toBe(vector.expected_hmac_header);
  });

  it('delivers a signed Shopify webhook byte for byte; the dev server verifies it and its answer comes back', async () => {
    const r = await relay();
    const dev = await devServer();
    const tunnel = await client(r, dev.url);
    expect(tunnel.publicUrl).toBe(`${r.url}/t/alice`);

    const raw = Buffer.from(vector.raw_body, 'utf8');
    const res = await post(`${tunnel.publicUrl}/v1/webhooks/shopify`, raw, { ...vector.headers, 'content-type': 'application/json' });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text)).toEqual({ ok: true, n: 1, bytes: raw.length });
    expect(res.headers.get('x-dev-server')).toBe('stand-in');
    expect(dev.received).toHaveLength(1);
    expect(dev.received[0].url).toBe('/v1/webhooks/shopify');
    expect(dev.received[0].hmacValid).toBe(true);
    expect(dev.received[0].body.equals(raw)).toBe(true);
    expect(dev.received[0].headers['x-shopify-topic']).toBe('products/create');

    // Bytes that are not valid UTF-8, odd whitespace and a BOM survive too.
    const odd = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{ "n" :\t"caf\u00e9" ,\r\n "b": "'), Buffer.from([0xff, 0xfe, 0x00]), Buffer.from('"}')]);
    const res2 = await post(`${tunnel.publicUrl}/v1/webhooks/shopify`, odd, shopifyHeaders(odd, vector.secret, 'odd-1'));
    expect(res2.status).toBe(200);
    expect(dev.received[1].body.equals(odd)).toBe(true);
    expect(dev.received[1].hmacValid).toBe(true);

    // A wrong signature reaches the dev server unchanged and its 401 reaches the sender.
    const res3 = await post(`${tunnel.publicUrl}/v1/webhooks/shopify`, raw, shopifyHeaders(raw, 'not-the-secret'));
    expect(res3.status).toBe(401);
    expect(dev.received[2].hmacValid).toBe(false);

    // Events and query strings pass too.
    const res4 = await post(`${tunnel.publicUrl}/v1/run/event?x=1`, '{"event":"a.b","data":{}}', { 'content-type': 'application/json' });
    expect(res4.status).toBe(200);
    expect(dev.received[3].url).toBe('/v1/run/event?x=1');
  });

  it('forwards only ingress paths: everything else is 404 (405 for other methods) and never reaches the dev server', async () => {
    const r = await relay();
    const dev = await devServer();
    await client(r, dev.url);
    const refused = [
      '/t/alice/v1/executions',
      '/t/alice/v1/executions/abc/replay',
      '/t/alice/healthz',
      '/t/alice/v1/webhooks',
      '/t/alice/v1/webhooks/',
      '/t/alice/v1/webhooks/../executions',
      '/t/alice/v1/webhooks/%2e%2e/executions',
      '/t/alice/v1/webhooks/shopify%2f..%2fx',
      '/t/alice/v1/run/event/extra',
      '/t/carol/v1/webhooks/shopify',
      '/t/ALICE/v1/webhooks/shopify',
      '/v1/webhooks/shopify',
      '/t/alice//v1/webhooks/shopify',
    ];
    for (const p of refused) {
      // fetch would normalise "..": send raw targets with node:http instead.
      const status = await rawPost(r.url, p);
      expect({ p, status }).toEqual({ p, status: 404 });
    }
    const get = await fetch(`${r.url}/t/alice/v1/webhooks/shopify`);
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
    // Another method on a path that is not an ingress route stays 404.
    expect((await fetch(`${r.url}/t/alice/v1/executions`)).status).toBe(404);
    expect(dev.received).toHaveLength(0);
    expect((await fetch(`${r.url}/healthz`)).status).toBe(200);
  });

  it('refuses a wrong token, and a token asking for another name', async () => {
    const r = await relay();
    const dev = await devServer();
    const logger = captureLogger();
    const wrong = connectRelay({ relayUrl: r.url, token: 'not-a-token-at-all-000000', localUrl: dev.url, logger, ...fast });
    await expect(wrong).rejects.toMatchObject({ code: 'E_TUNNEL_AUTH' });
    const other = connectRelay({ relayUrl: r.url, token: ALICE, name: 'bob', localUrl: dev.url, logger, ...fast });
    await expect(other).rejects.toMatchObject({ code: 'E_TUNNEL_AUTH' });
    expect(r.connectedNames()).toEqual([]);
    // The refusal is not retried in a loop.
    expect(logger.lines.filter((l) => l.includes('reconnecting'))).toEqual([]);
  });

  it('keeps tenants apart: each token receives only its own name\'s traffic', async () => {
    const r = await relay();
    const devA = await devServer();
    const devB = await devServer();
    const a = await client(r, devA.url, ALICE);
    const b = await client(r, devB.url, BOB);
    expect(a.publicUrl.endsWith('/t/alice')).toBe(true);
    expect(b.publicUrl.endsWith('/t/bob')).toBe(true);
    const raw = Buffer.from(vector.raw_body);
    expect((await post(`${r.url}/t/bob/v1/webhooks/shopify`, raw, shopifyHeaders(raw, vector.secret, 'b1'))).status).toBe(200);
    expect((await post(`${r.url}/t/alice/v1/webhooks/shopify`, raw, shopifyHeaders(raw, vector.secret, 'a1'))).status).toBe(200);
    expect(devB.received.map((x) => x.headers['x-shopify-webhook-id'])).toEqual(['b1']);
    expect(devA.received.map((x) => x.headers['x-shopify-webhook-id'])).toEqual(['a1']);
    // Bob's queue (were he offline) is his alone too.
    await b.close();
    await waitFor(() => !r.connectedNames().includes('bob'), 'bob to disconnect');
    expect((await post(`${r.url}/t/bob/v1/webhooks/shopify`, raw, shopifyHeaders(raw, vector.secret, 'b2'))).status).toBe(202);
    expect((await post(`${r.url}/t/alice/v1/webhooks/shopify`, raw, shopifyHeaders(raw, vector.secret, 'a2'))).status).toBe(200);
    expect(devA.received.map((x) => x.headers['x-shopify-webhook-id'])).toEqual(['a1', 'a2']);
    expect(r.pending('bob')).toBe(1);
    expect(r.pending('alice')).toBe(0);
  });

  it('queues while the developer is offline (202), then delivers in order on connect and deletes only what was answered', async () => {
    const r = await relay();
    const dev = await devServer();
    const raw = Buffer.from(vector.raw_body);
    for (const id of ['q1', 'q2', 'q3']) {
      const res = await post(`${r.url}/t/alice/v1/webhooks/shopify`, raw, shopifyHeaders(raw, vector.secret, id));
      expect(res.status).toBe(202);
      expect(res.headers.get('x-alloy-relay')).toBe('queued');
    }
    expect(r.pending('alice')).toBe(3);
    const logger = captureLogger();
    await client(r, dev.url, ALICE, { logger });
    await waitFor(() => dev.received.length === 3, 'three queued deliveries');
    expect(dev.received.map((x) => x.headers['x-shopify-webhook-id'])).toEqual(['q1', 'q2', 'q3']);
    expect(dev.received.every((x) => x.hmacValid === true && x.headers['x-alloy-relay-queued'] === '1')).toBe(true);
    await waitFor(() => r.pending('alice') === 0, 'queue to empty');
    expect(await readdir(path.join(dir, 'queue', 'alice'))).toEqual([]);
    expect(logger.lines.some((l) => l.includes('kept 3 request(s)'))).toBe(true);
  });

  it('keeps a queued request until the local server answers (nack, then redelivery)', async () => {
    const r = await relay();
    const port = await freePort();
    const raw = Buffer.from(vector.raw_body);
    expect((await post(`${r.url}/t/alice/v1/webhooks/shopify`, raw, shopifyHeaders(raw, vector.secret, 'late'))).status).toBe(202);
    const logger = captureLogger();
    // Nothing listens on `port` yet: the client cannot deliver and must not acknowledge.
    await client(r, `http://127.0.0.1:${port}`, ALICE, { logger });
    await waitFor(() => logger.lines.some((l) => l.includes('could not reach the local server')), 'a failed local delivery');
    expect(r.pending('alice')).toBe(1);
    const dev = await devServer(port);
    await waitFor(() => dev.received.length === 1, 'redelivery once the dev server is up');
    expect(dev.received[0].hmacValid).toBe(true);
    await waitFor(() => r.pending('alice') === 0, 'ack');
  });

  it('does not take a 5xx, 408 or 429 from the dev server as the ack of a queued request: it keeps and redelivers it', async () => {
    const relayLog = captureLogger();
    const r = await relay({ logger: relayLog });
    const dev = await devServer();
    const raw = Buffer.from(vector.raw_body);
    expect((await post(`${r.url}/t/alice/v1/webhooks/shopify`, raw, shopifyHeaders(raw, vector.secret, 'reloading'))).status).toBe(202);
    // The dev server is reloading: 503, then rate limited, then a request timeout, then fine.
    dev.failWith.push(503, 429, 408);
    const logger = captureLogger();
    await client(r, dev.url, ALICE, { logger });
    await waitFor(() => dev.received.length === 4, 'three refused deliveries and the one that is answered');
    await waitFor(() => r.pending('alice') === 0, 'ack after the 200');
    expect(dev.received.map((x) => x.headers['x-shopify-webhook-id'])).toEqual(['reloading', 'reloading', 'reloading', 'reloading']);
    expect(dev.received.every((x) => x.hmacValid === true)).toBe(true);
    expect(logger.lines.filter((l) => l.startsWith('warn') && /answered (503|429|408)/.test(l))).toHaveLength(3);
    expect(relayLog.lines.filter((l) => l.includes('not delivered')).length).toBe(3);
    expect(await readdir(path.join(dir, 'queue', 'alice'))).toEqual([]);
  });

  it('a 4xx other than 408/429 does acknowledge a queued request (the dev server has decided)', async () => {
    const r = await relay();
    const dev = await devServer();
    const raw = Buffer.from(vector.raw_body);
    expect((await post(`${r.url}/t/alice/v1/webhooks/shopify`, raw, shopifyHeaders(raw, 'wrong-secret', 'bad-sig'))).status).toBe(202);
    await client(r, dev.url);
    await waitFor(() => r.pending('alice') === 0, 'the 401 to acknowledge it');
    expect(dev.received).toHaveLength(1);
    expect(dev.received[0].hmacValid).toBe(false);
  });

  it('a live request still gets the dev server\'s 503 passed through (the app retries it)', async () => {
    const r = await relay();
    const dev = await devServer();
    await client(r, dev.url);
    dev.failWith.push(503);
    const res = await post(`${r.url}/t/alice/v1/run/event`, '{}');
    expect(res.status).toBe(503);
    expect(r.pending('alice')).toBe(0);
  });

  it('the relay itself refuses to count a 5xx "response" to a queued request as its ack (older clients send one)', async () => {
    const r = await relay();
    expect((await post(`${r.url}/t/alice/v1/run/event`, '{"n":1}')).status).toBe(202);
    const ws = new WebSocket(`${r.url.replace('http', 'ws')}/v1/tunnel/connect`, { headers: { authorization: `Bearer ${ALICE}` } });
    toClose.push({ close: async () => ws.terminate() });
    const requests: Array<{ id: string; queued: boolean }> = [];
    ws.on('message', (data) => {
      const frame = JSON.parse(String(data)) as { type: string; id: string; queued: boolean };
      if (frame.type !== 'request') return;
      requests.push(frame);
      const status = requests.length === 1 ? 503 : 200;
      ws.send(JSON.stringify({ type: 'response', id: frame.id, status, headers: [], body: '' }));
    });
    await waitFor(() => requests.length === 2, 'a redelivery after the 503');
    expect(requests[0].queued).toBe(true);
    expect(requests[1].id).toBe(requests[0].id);
    await waitFor(() => r.pending('alice') === 0, 'the 200 to acknowledge it');
  });

  it('moves an unreadable queue file aside, reports it, and delivers the requests behind it', async () => {
    const raw = Buffer.from(vector.raw_body);
    const r1 = await relay();
    for (const id of ['broken', 'behind']) {
      expect((await post(`${r1.url}/t/alice/v1/webhooks/shopify`, raw, shopifyHeaders(raw, vector.secret, id))).status).toBe(202);
    }
    await r1.close();
    const qdir = path.join(dir, 'queue', 'alice');
    const [first] = (await readdir(qdir)).filter((f) => f.endsWith('.json')).sort();
    const text = await readFile(path.join(qdir, first), 'utf8');
    await writeFile(path.join(qdir, first), text.slice(0, text.length / 2)); // truncated

    const relayLog = captureLogger();
    const r2 = await relay({ logger: relayLog });
    const dev = await devServer();
    const logger = captureLogger();
    const drops: unknown[] = [];
    const t = await client(r2, dev.url, ALICE, { logger });
    t.on('dropped', (d) => drops.push(d));
    await waitFor(() => dev.received.length === 1, 'the request behind the broken one');
    expect(dev.received[0].headers['x-shopify-webhook-id']).toBe('behind');
    await waitFor(() => r2.pending('alice') === 0, 'the queue to empty');
    const bad = relayLog.lines.filter((l) => l.includes('unreadable'));
    expect(bad).toHaveLength(1);
    expect(bad[0]).toContain(`${first}.bad`);
    expect(relayLog.lines.filter((l) => l.includes('failed'))).toEqual([]);
    expect(await readFile(path.join(qdir, `${first}.bad`), 'utf8')).toBe(text.slice(0, text.length / 2));

    // Reported to the developer on their next connection, like an overflow.
    await t.close();
    await waitFor(() => r2.connectedNames().length === 0, 'disconnect');
    const logger2 = captureLogger();
    await client(r2, dev.url, ALICE, { logger: logger2 });
    expect(logger2.lines.filter((l) => l.startsWith('warn') && l.includes('1 unreadable'))).toHaveLength(1);
  });

  it('backs off instead of spinning when the queue cannot be read at all, and recovers', async () => {
    const raw = Buffer.from(vector.raw_body);
    const r1 = await relay();
    expect((await post(`${r1.url}/t/alice/v1/webhooks/shopify`, raw, shopifyHeaders(raw, vector.secret, 'stuck'))).status).toBe(202);
    await r1.close();
    const qdir = path.join(dir, 'queue', 'alice');
    const [first] = (await readdir(qdir)).filter((f) => f.endsWith('.json'));
    await writeFile(path.join(qdir, first), '{"trunc');
    // Nothing can be moved aside either: a non-empty directory sits where the .bad file goes.
    await mkdir(path.join(qdir, `${first}.bad`, 'blocker'), { recursive: true });

    const relayLog = captureLogger();
    const r2 = await relay({ logger: relayLog });
    const dev = await devServer();
    await client(r2, dev.url);
    const failures = () => relayLog.lines.filter((l) => l.includes('delivering the queue for "alice" failed')).length;
    await waitFor(() => failures() >= 2, 'two failed attempts');
    // A measuring window, not a wait for work: backoff from 50 ms doubles, so a handful of
    // attempts fit in it (the unfixed loop made thousands).
    await new Promise((res) => setTimeout(res, 300));
    expect(failures()).toBeLessThanOrEqual(6);
    expect(relayLog.lines.some((l) => /failed: .*; retrying in \d+ ms/.test(l))).toBe(true);
    expect(r2.pending('alice')).toBe(1);

    await rm(path.join(qdir, `${first}.bad`), { recursive: true });
    await waitFor(() => r2.pending('alice') === 0, 'the entry to be moved aside on a later attempt', 10_000);
    expect(await readFile(path.join(qdir, `${first}.bad`), 'utf8')).toBe('{"trunc');
    expect(dev.received).toHaveLength(0);
  });

  it('loses no queued request across a relay restart (queue on disk)', async () => {
    const port = await freePort();
    const r1 = await relay({ port });
    const raw = Buffer.from(vector.raw_body);
    for (const id of ['r1', 'r2']) {
      expect((await post(`${r1.url}/t/alice/v1/webhooks/shopify`, raw, shopifyHeaders(raw, vector.secret, id))).status).toBe(202);
    }
    await r1.close();
    const r2 = await relay({ port });
    expect(r2.pending('alice')).toBe(2);
    const dev = await devServer();
    await client(r2, dev.url);
    await waitFor(() => dev.received.length === 2, 'delivery after restart');
    expect(dev.received.map((x) => x.headers['x-shopify-webhook-id'])).toEqual(['r1', 'r2']);
    expect(dev.received.every((x) => x.hmacValid)).toBe(true);
  });

  it('reconnects after the relay restarts, saying so, and the stable URL works again', async () => {
    const port = await freePort();
    const r1 = await relay({ port });
    const dev = await devServer();
    const logger = captureLogger();
    const tunnel = await client(r1, dev.url, ALICE, { logger });
    const url = tunnel.publicUrl;
    const restored: unknown[] = [];
    tunnel.on('restored', (e) => restored.push(e));
    await r1.close();
    await waitFor(() => logger.lines.some((l) => /tunnel lost, reconnecting in [\d.]+s/.test(l)), '"tunnel lost" message');
    const r2 = await relay({ port });
    await waitFor(() => restored.length === 1, '"restored" event');
    expect(logger.lines.some((l) => l.startsWith('info tunnel restored'))).toBe(true);
    expect(r2.connectedNames()).toEqual(['alice']);
    const raw = Buffer.from(vector.raw_body);
    const res = await post(`${url}/v1/webhooks/shopify`, raw, shopifyHeaders(raw, vector.secret, 'after'));
    expect(res.status).toBe(200);
    expect(dev.received.at(-1)?.hmacValid).toBe(true);
  });

  it('overflow is explicit: 507 to the sender, a warning on the relay, a drop report to the developer once', async () => {
    const relayLog = captureLogger();
    const r = await relay({ queue: { maxItems: 2 }, logger: relayLog });
    const raw = Buffer.from(vector.raw_body);
    const statuses: number[] = [];
    for (const id of ['o1', 'o2', 'o3']) {
      statuses.push((await post(`${r.url}/t/alice/v1/webhooks/shopify`, raw, shopifyHeaders(raw, vector.secret, id))).status);
    }
    expect(statuses).toEqual([202, 202, 507]);
    expect(relayLog.lines.some((l) => l.startsWith('warn') && l.includes('queue for "alice" is full'))).toBe(true);

    const dev = await devServer();
    const logger = captureLogger();
    const drops: unknown[] = [];
    const t = await connectRelay({ relayUrl: r.url, token: ALICE, localUrl: dev.url, logger, ...fast });
    t.on('dropped', (d) => drops.push(d));
    await waitFor(() => dev.received.length === 2, 'the two queued ones');
    expect(dev.received.map((x) => x.headers['x-shopify-webhook-id'])).toEqual(['o1', 'o2']);
    expect(logger.lines.some((l) => l.startsWith('warn') && l.includes('dropped 1 refused because its queue was full'))).toBe(true);
    await t.close();
    await waitFor(() => r.connectedNames().length === 0, 'disconnect');
    // Acknowledged: the next connection gets no stale report.
    const logger2 = captureLogger();
    await client(r, dev.url, ALICE, { logger: logger2 });
    expect(logger2.lines.some((l) => l.includes('dropped'))).toBe(false);
  });

  it('a live request whose developer disconnects mid-flight is queued (202) and delivered again, not lost', async () => {
    const r = await relay({ requestTimeoutMs: 20_000 });
    const dev = await devServer();
    // Far longer than closing the tunnel can take, however loaded the machine: the dev server
    // must still be "working on it" when the developer leaves.
    dev.delayMs = 15_000;
    const t = await client(r, dev.url);
    const raw = Buffer.from(vector.raw_body);
    const pending = post(`${r.url}/t/alice/v1/webhooks/shopify`, raw, shopifyHeaders(raw, vector.secret, 'mid-flight'));
    await waitFor(() => dev.received.length === 1, 'the dev server to get it');
    await t.close();
    const res = await pending;
    expect(res.status).toBe(202);
    expect(r.pending('alice')).toBe(1);
    dev.delayMs = 0;
    await client(r, dev.url);
    await waitFor(() => dev.received.length === 2, 'redelivery');
    expect(dev.received.map((x) => x.headers['x-shopify-webhook-id'])).toEqual(['mid-flight', 'mid-flight']);
    await waitFor(() => r.pending('alice') === 0, 'ack');
  });

  it('answers 413 over the body limit and 504 when the developer is too slow', async () => {
    const r = await relay({ maxBodyBytes: 1024, requestTimeoutMs: 200 });
    const dev = await devServer();
    await client(r, dev.url);
    const big = await post(`${r.url}/t/alice/v1/webhooks/shopify`, Buffer.alloc(4096, 0x61));
    expect(big.status).toBe(413);
    expect(JSON.parse(big.text).error.code).toBe('E_BODY_TOO_LARGE');
    expect(dev.received).toHaveLength(0);
    dev.delayMs = 600;
    const slow = await post(`${r.url}/t/alice/v1/webhooks/shopify`, '{}');
    expect(slow.status).toBe(504);
    expect(JSON.parse(slow.text).error.code).toBe('E_RELAY_TIMEOUT');
  });

  it('a newer connection for the same name takes over; the old one stops instead of fighting back', async () => {
    const r = await relay();
    const devOld = await devServer();
    const devNew = await devServer();
    const oldLog = captureLogger();
    const old = await client(r, devOld.url, ALICE, { logger: oldLog });
    const fatal: AlloyError[] = [];
    old.on('fatal', (e) => fatal.push(e));
    await client(r, devNew.url, ALICE);
    await waitFor(() => fatal.length === 1, 'the old client to be told');
    expect(fatal[0].code).toBe('E_TUNNEL_REPLACED');
    expect((await post(`${r.url}/t/alice/v1/run/event`, '{}')).status).toBe(200);
    expect(devNew.received).toHaveLength(1);
    expect(devOld.received).toHaveLength(0);
    expect(oldLog.lines.some((l) => l.includes('reconnecting'))).toBe(false);
  });

  it('detects a relay that stopped answering heartbeats and reconnects', async () => {
    // A fake relay that says hello and then never answers pings (autoPong off).
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', autoPong: false });
    let connections = 0;
    wss.on('connection', (ws) => {
      connections += 1;
      ws.send(JSON.stringify({ type: 'hello', name: 'alice', publicUrl: 'http://x/t/alice', queued: 0, dropped: { overflow: 0, expired: 0 } }));
    });
    toClose.push({ close: () => new Promise<void>((res) => { for (const c of wss.clients) c.terminate(); wss.close(() => res()); }) });
    await new Promise((res) => wss.once('listening', res));
    const port = (wss.address() as { port: number }).port;
    const logger = captureLogger();
    const t = await connectRelay({ relayUrl: `ws://127.0.0.1:${port}`, token: ALICE, localUrl: 'http://127.0.0.1:1', logger, heartbeatMs: 50, heartbeatTimeoutMs: 100, backoff: { initialMs: 20, maxMs: 40 } });
    toClose.push(t);
    await waitFor(() => connections >= 2, 'a reconnect after the silent connection');
    expect(logger.lines.some((l) => l.includes('no heartbeat answer'))).toBe(true);
    expect(logger.lines.some((l) => l.includes('tunnel lost, reconnecting in'))).toBe(true);
  });

  it('aborting the signal closes the tunnel (the relay sees the developer leave)', async () => {
    const r = await relay();
    const dev = await devServer();
    const ac = new AbortController();
    const t = await startTunnel({ provider: 'relay', localUrl: dev.url, relayUrl: r.url, token: ALICE, logger: captureLogger(), signal: ac.signal });
    toClose.push(t);
    expect(r.connectedNames()).toEqual(['alice']);
    ac.abort();
    await waitFor(() => r.connectedNames().length === 0, 'the relay to see the disconnect');
    expect((await post(`${t.publicUrl}/v1/run/event`, '{}')).status).toBe(202);
  });

  it('startTunnel({provider: "relay"}) reads the token from env and explains what is missing', async () => {
    const r = await relay();
    const dev = await devServer();
    const logger = captureLogger();
    const t = await startTunnel({ provider: 'relay', localUrl: dev.url, relayUrl: r.url.replace('http', 'ws'), logger, env: { ALLOY_RELAY_TOKEN: BOB } });
    toClose.push(t);
    expect(t.publicUrl).toBe(`${r.url}/t/bob`);
    expect((await post(`${t.publicUrl}/v1/webhooks/custom`, 'x')).status).toBe(200);
    await expect(startTunnel({ provider: 'relay', localUrl: dev.url, relayUrl: r.url, logger, env: {} })).rejects.toMatchObject({ code: 'E_MISSING_SECRET' });
    await expect(startTunnel({ provider: 'relay', localUrl: dev.url, logger, env: { ALLOY_RELAY_TOKEN: BOB } })).rejects.toMatchObject({ code: 'E_TUNNEL_URL' });
    await expect(startTunnel({ provider: 'relay', localUrl: dev.url, relayUrl: 'ws://127.0.0.1:1', logger, env: { ALLOY_RELAY_TOKEN: BOB } })).rejects.toMatchObject({ code: 'E_TUNNEL_CONNECT' });
    await expect(startTunnel({ provider: 'relay', localUrl: dev.url, relayUrl: r.url, name: 'Not OK', logger, env: { ALLOY_RELAY_TOKEN: BOB } })).rejects.toMatchObject({ code: 'E_TUNNEL_NAME' });
    // The token never appears in anything logged.
    expect(logger.lines.join('\n')).not.toContain(BOB);
  });
});

async function rawPost(base: string, target: string): Promise<number> {
  const { request } = await import('node:http');
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, method: 'POST', path: target, headers: { 'content-type': 'application/json' } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end('{}');
  });
}
