/**
 * Peers cannot crash the relay or `alloy dev`'s relay client: every frame is checked against
 * schemas/tunnel-frame.schema.json before use; a bad one closes that connection with 1008.
 * Property-based: at least 10,000 random and mutated frames (fast-check) are sent over real
 * WebSockets to each side; afterwards each side still serves, nothing was rejected unhandled,
 * and no listener leaked.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { startRelayServer, type RelayServer } from '../../src/tunnel/relay-server.js';
import { connectRelay } from '../../src/tunnel/relay-client.js';
import { parseRelayTokens } from '../../src/tunnel/relay-tokens.js';
import { CLOSE_BAD_FRAME, RELAY_CONNECT_PATH, decodeFrame } from '../../src/tunnel/protocol.js';
import { rm } from 'node:fs/promises';
import { captureLogger, loadHmacVector, post, startStandInDevServer, tempDir, waitFor } from '../tunnel/helpers.js';

const FRAMES = 10_000;
const BURST = 25;
const TOKENS = Array.from({ length: 8 }, (_, i) => [`fuzz${i}`, `fuzz-token-${i}-0123456789abcdef`] as const);
const tokens = parseRelayTokens(TOKENS.map(([n, t]) => `${n}:${t}`).join(','));

/** Valid frames of every type, then mutated: fields replaced by anything (objects with toString…), dropped, added. */
function frameArbitrary(kind: 'toRelay' | 'toClient'): fc.Arbitrary<string> {
  const headers = fc.array(fc.tuple(fc.constantFrom('content-type', 'x-a'), fc.string({ maxLength: 20 })), { maxLength: 3 });
  const id = fc.stringMatching(/^[a-z0-9-]{1,20}$/);
  const dropped = fc.record({ overflow: fc.nat(5), expired: fc.nat(5), unreadable: fc.nat(5) });
  const valid: fc.Arbitrary<Record<string, unknown>> =
    kind === 'toRelay'
      ? fc.oneof(
          fc.record({ type: fc.constant('response'), id, status: fc.integer({ min: 100, max: 599 }), headers, body: fc.base64String({ maxLength: 40 }) }),
          fc.record({ type: fc.constant('nack'), id, error: fc.string({ maxLength: 30 }) }),
          fc.record({ type: fc.constant('hello-ack'), dropped }),
        )
      : fc.oneof(
          fc.record({
            type: fc.constant('request'),
            id,
            method: fc.constantFrom('POST', 'GET'),
            path: fc.constantFrom('/v1/webhooks/shopify', '/v1/run/event', '/v1/executions', '/x'),
            headers,
            body: fc.base64String({ maxLength: 40 }),
            queued: fc.boolean(),
            receivedAt: fc.constant(new Date(0).toISOString()),
          }),
          fc.record({ type: fc.constant('hello'), name: fc.constant('fuzz0'), publicUrl: fc.constant('http://relay.test/t/fuzz0'), queued: fc.nat(3), dropped }),
        );
  const hostile = fc.oneof(
    fc.constant({ toString: 0 }),
    fc.constant({ toString: 1, valueOf: 2 }),
    fc.constant({ __proto__: { polluted: 1 } }),
    fc.constant([]),
    fc.constant(null),
    fc.anything({ maxDepth: 3 }),
  );
  const mutated = fc.tuple(valid, fc.nat(10), hostile, fc.string({ maxLength: 8 })).map(([frame, i, value, extra]) => {
    const keys = Object.keys(frame);
    const key = keys[i % keys.length];
    const copy: Record<string, unknown> = { ...frame };
    if (i % 3 === 0) copy[key] = value;
    else if (i % 3 === 1) delete copy[key];
    else copy[extra || 'extra'] = value;
    return copy;
  });
  return fc.oneof(
    { weight: 1, arbitrary: valid.map((f) => JSON.stringify(f)) },
    { weight: 5, arbitrary: mutated.map((f) => JSON.stringify(f)) },
    { weight: 1, arbitrary: fc.json({ maxDepth: 4 }) },
    { weight: 1, arbitrary: fc.string({ maxLength: 50 }) },
    { weight: 1, arbitrary: fc.constantFrom('{"type":"nack","id":{"toString":0}}', '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]', '{"type":"response","id":"x","status":{"valueOf":1}}') },
  );
}

function sample(kind: 'toRelay' | 'toClient', n: number): string[] {
  return fc.sample(frameArbitrary(kind), { numRuns: n, seed: 20261201 });
}

const problems: string[] = [];
const onRejection = (reason: unknown) => problems.push(`unhandledRejection: ${String((reason as Error)?.stack ?? reason)}`);
const onException = (err: Error) => problems.push(`uncaughtException: ${err.stack}`);
const onWarning = (w: Error) => {
  if (w.name === 'MaxListenersExceededWarning') problems.push(`warning: ${w.message}`);
};
beforeAll(() => {
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtException', onException);
  process.on('warning', onWarning);
});
afterAll(() => {
  process.off('unhandledRejection', onRejection);
  process.off('uncaughtException', onException);
  process.off('warning', onWarning);
});

let dir: string;
let cleanup: () => Promise<void>;
const toClose: Array<{ close(): Promise<void> }> = [];
beforeEach(async () => {
  ({ dir } = await tempDir('alloy-sec-frames-'));
  // The relay may still be finishing a queue write as it closes: retry the removal.
  cleanup = () => rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});
afterEach(async () => {
  for (const c of toClose.splice(0).reverse()) await c.close().catch(() => {});
  await cleanup();
});

function open(url: string, token: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace('http', 'ws')}${RELAY_CONNECT_PATH}`, { headers: { authorization: `Bearer ${token}` } });
    ws.once('message', () => resolve(ws)); // the hello
    ws.once('error', reject);
  });
}

describe('tunnel frames are checked against the protocol schema', () => {
  it('the relay closes a connection sending {"type":"nack","id":{"toString":0}} with 1008 and keeps serving', async () => {
    const logger = captureLogger();
    const relay = await startRelayServer({ dataDir: dir, tokens, logger });
    toClose.push(relay);
    const ws = await open(relay.url, TOKENS[0][1]);
    const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
    ws.send('{"type":"nack","id":{"toString":0}}');
    expect(await closed).toBe(CLOSE_BAD_FRAME);
    expect(logger.lines.some((l) => l.includes('bad frame') && l.includes('"fuzz0"'))).toBe(true);
    expect((await fetch(`${relay.url}/healthz`)).status).toBe(200);
    expect(problems).toEqual([]);
  });

  it('answers 431 for a public request the protocol cannot carry, instead of a frame that would close the developer\'s connection', async () => {
    const relay = await startRelayServer({ dataDir: dir, tokens, logger: captureLogger() });
    toClose.push(relay);
    const ws = await open(relay.url, TOKENS[0][1]);
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    for (let i = 0; i < 600; i++) headers[`x-h${i}`] = '1';
    const res = await post(`${relay.url}/t/fuzz0/v1/run/event`, '{}', headers);
    expect(res.status).toBe(431);
    expect(ws.readyState).toBe(WebSocket.OPEN);
    expect(relay.pending('fuzz0')).toBe(0);
    ws.close();
  });

  it(`the relay survives ${FRAMES} random and mutated frames from developers`, async () => {
    const vector = await loadHmacVector();
    const dev = await startStandInDevServer(vector.secret);
    toClose.push(dev);
    const relay: RelayServer = await startRelayServer({ dataDir: dir, tokens, logger: captureLogger(), requestTimeoutMs: 2_000 });
    toClose.push(relay);
    const frames = sample('toRelay', FRAMES);
    const listenersBefore = process.listenerCount('unhandledRejection') + process.listenerCount('uncaughtException');
    let sent = 0;
    let badCloses = 0;
    // Several developers at once, each sending bursts; a bad frame ends that connection only.
    await Promise.all(
      TOKENS.map(async ([, token], w) => {
        for (let i = w * BURST; i < frames.length; i += TOKENS.length * BURST) {
          const ws = await open(relay.url, token);
          const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
          for (const f of frames.slice(i, i + BURST)) {
            if (ws.readyState !== WebSocket.OPEN) break;
            ws.send(f);
            sent++;
          }
          // Every burst ends with a frame the relay must refuse.
          if (ws.readyState === WebSocket.OPEN) ws.send('{"type":"nack","id":{"toString":0}}');
          if ((await closed) === CLOSE_BAD_FRAME) badCloses++;
        }
      }),
    );
    expect(sent).toBeGreaterThanOrEqual(FRAMES * 0.9);
    expect(badCloses).toBe(Math.ceil(FRAMES / BURST));
    // Still serving: a real developer connects and a webhook goes through end to end.
    const tunnel = await connectRelay({ relayUrl: relay.url, token: TOKENS[0][1], localUrl: dev.url, logger: captureLogger() });
    toClose.push(tunnel);
    const res = await post(`${relay.url}/t/fuzz0/v1/webhooks/shopify`, vector.raw_body, vector.headers);
    expect(res.status).toBe(200);
    await waitFor(() => relay.connectedNames().length === 1, 'the developer connection');
    expect(process.listenerCount('unhandledRejection') + process.listenerCount('uncaughtException')).toBe(listenersBefore);
    expect(problems).toEqual([]);
  }, 180_000);

  it(`the relay client (alloy dev) survives ${FRAMES} random and mutated frames from a hostile relay`, async () => {
    const vector = await loadHmacVector();
    const dev = await startStandInDevServer(vector.secret);
    toClose.push(dev);
    const frames = sample('toClient', FRAMES);
    // The attack from the issue, first.
    frames.unshift(JSON.stringify({ type: 'request', id: 'a', method: { toString: 1 }, path: '/v1/run/event', headers: [], body: '', queued: false, receivedAt: '' }));
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    toClose.push({ close: () => new Promise<void>((r) => wss.close(() => r())) });
    const url = `http://127.0.0.1:${(wss.address() as AddressInfo).port}`;
    const closeCodes: number[] = [];
    const answers: string[] = [];
    let next = 0;
    let sent = 0;
    let finalCheck: ((frame: string) => void) | undefined;
    wss.on('connection', (ws) => {
      ws.on('close', (code) => closeCodes.push(code));
      ws.on('message', (data) => {
        const text = data.toString();
        answers.push(text);
        finalCheck?.(text);
      });
      ws.send(JSON.stringify({ type: 'hello', name: 'fuzz0', publicUrl: `${url}/t/fuzz0`, queued: 0, dropped: { overflow: 0, expired: 0 } }));
      if (next >= frames.length) return;
      for (const f of frames.slice(next, next + BURST)) ws.send(f);
      sent += Math.min(BURST, frames.length - next);
      next += BURST;
      ws.send('{"type":"request","id":{"toString":0}}');
    });
    const logger = captureLogger();
    const tunnel = await connectRelay({ relayUrl: url, token: 'any', localUrl: dev.url, logger, backoff: { initialMs: 1, maxMs: 4 }, random: () => 0.5 });
    toClose.push(tunnel);
    const fatal: unknown[] = [];
    tunnel.on('fatal', (e) => fatal.push(e));
    await waitFor(() => next >= frames.length && closeCodes.length >= Math.ceil(frames.length / BURST), 'every burst', 170_000);
    expect(sent).toBeGreaterThanOrEqual(FRAMES);
    expect(closeCodes.filter((c) => c === CLOSE_BAD_FRAME).length).toBeGreaterThanOrEqual(Math.ceil(FRAMES / BURST));
    expect(logger.lines.some((l) => l.includes('the relay sent a bad frame'))).toBe(true);
    expect(fatal).toEqual([]);
    // Every answer the client sent is itself a valid frame.
    for (const a of answers) expect(decodeFrame(a, ['response', 'nack', 'hello-ack']).ok).toBe(true);
    // Still relaying: the client reconnects and answers a valid request from the dev server.
    const answered = new Promise<string>((r) => (finalCheck = (f) => f.includes('"id":"final"') && r(f)));
    const body = Buffer.from(vector.raw_body);
    const headers = Object.entries(vector.headers).map(([k, v]) => [k.toLowerCase(), v]);
    await waitFor(() => [...wss.clients].some((c) => c.readyState === WebSocket.OPEN), 'a reconnect');
    const live = [...wss.clients].find((c) => c.readyState === WebSocket.OPEN)!;
    live.send(JSON.stringify({ type: 'request', id: 'final', method: 'POST', path: '/v1/webhooks/shopify', headers, body: body.toString('base64'), queued: false, receivedAt: new Date().toISOString() }));
    expect(JSON.parse(await answered)).toMatchObject({ type: 'response', id: 'final', status: 200 });
    expect(problems).toEqual([]);
  }, 180_000);
});
