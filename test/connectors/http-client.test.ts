import { Agent, MockAgent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createHttpClient,
  createHttpConnector,
  isRetryableStatus,
  parseRetryAfter,
  stepErrorFromResponse,
} from '../../src/connectors/index.js';
import { StepError } from '../../src/errors.js';
import { parsedUrl } from '../../src/connectors/http-client.js';
import { makeContext, thrown } from './helpers.js';
import { startServer } from './local-server.js';

const NOW = Date.parse('2026-01-15T10:00:00Z');

describe('parseRetryAfter (RFC 9110 §10.2.3)', () => {
  it('reads delta-seconds', () => {
    expect(parseRetryAfter('120', NOW)).toBe(120_000);
    expect(parseRetryAfter(' 0 ', NOW)).toBe(0);
  });
  it('reads Shopify’s fractional seconds', () => {
    expect(parseRetryAfter('2.0', NOW)).toBe(2000);
    expect(parseRetryAfter('1.5', NOW)).toBe(1500);
  });
  it('reads an IMF-fixdate relative to the given clock, never negative', () => {
    expect(parseRetryAfter('Thu, 15 Jan 2026 10:00:30 GMT', NOW)).toBe(30_000);
    expect(parseRetryAfter(new Date(NOW + 4500).toUTCString(), NOW)).toBe(4000); // HTTP-date has whole seconds
    expect(parseRetryAfter('Thu, 15 Jan 2026 09:59:00 GMT', NOW)).toBe(0);
  });
  it('ignores absent and unparseable values', () => {
    expect(parseRetryAfter(undefined, NOW)).toBeUndefined();
    expect(parseRetryAfter('', NOW)).toBeUndefined();
    expect(parseRetryAfter('soon', NOW)).toBeUndefined();
    expect(parseRetryAfter('-5', NOW)).toBeUndefined();
    expect(parseRetryAfter('12abc', NOW)).toBeUndefined();
  });
});

describe('stepErrorFromResponse', () => {
  const res = (status: number, headers: Record<string, string> = {}, text = '') => ({ status, headers, text });
  it('retries network-ish statuses only', () => {
    expect([408, 429, 500, 502, 503, 504].every(isRetryableStatus)).toBe(true);
    expect([400, 401, 403, 404, 409, 422].some(isRetryableStatus)).toBe(false);
  });
  it('2xx and 3xx are not errors', () => {
    expect(stepErrorFromResponse(res(200), { nowMs: NOW, label: 'x' })).toBeUndefined();
    expect(stepErrorFromResponse(res(304), { nowMs: NOW, label: 'x' })).toBeUndefined();
  });
  it('429 carries retryAfterMs from either form; 400 is final and ignores Retry-After', () => {
    const a = stepErrorFromResponse(res(429, { 'retry-after': '3' }), { nowMs: NOW, label: 'x' })!;
    expect(a).toMatchObject({ retryable: true, status: 429, retryAfterMs: 3000 });
    const b = stepErrorFromResponse(res(503, { 'Retry-After': 'Thu, 15 Jan 2026 10:01:00 GMT' }), { nowMs: NOW, label: 'x' })!;
    expect(b).toMatchObject({ retryable: true, status: 503, retryAfterMs: 60_000 });
    const c = stepErrorFromResponse(res(400, { 'retry-after': '3' }, '{"error":"bad"}'), { nowMs: NOW, label: 'POST /x' })!;
    expect(c).toBeInstanceOf(StepError);
    expect(c).toMatchObject({ retryable: false, status: 400, retryAfterMs: undefined });
    expect(c.message).toBe('POST /x failed with HTTP 400: {"error":"bad"}');
  });
});

describe('createHttpClient and the http connector against a local server', () => {
  let server: Awaited<ReturnType<typeof startServer>>;
  beforeAll(async () => {
    server = await startServer((req, res) => {
      if (req.url.startsWith('/slow')) {
        setTimeout(() => res.end('late'), 2000).unref();
        return;
      }
      if (req.url.startsWith('/stall')) {
        // Headers and a first chunk at once, then nothing: the call ends by its timeout or its caller.
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        res.write('first chunk');
        return;
      }
      if (req.url.startsWith('/limited')) {
        res.writeHead(429, { 'Retry-After': '7' }).end('{"message":"slow down"}');
        return;
      }
      if (req.url.startsWith('/unauthorized')) {
        res.writeHead(401, { 'Content-Type': 'application/json' }).end('{"message":"no"}');
        return;
      }
      res.writeHead(200, { 'Content-Type': 'application/json', 'X-Echo': 'yes' });
      res.end(JSON.stringify({ method: req.method, url: req.url, body: req.body }));
    });
  });
  afterAll(() => server.close());

  it('returns status, lower-cased headers and text', async () => {
    const http = createHttpClient();
    const res = await http({ method: 'post', url: `${server.url}/echo`, body: 'hi', headers: { 'content-type': 'text/plain' } });
    expect(res.status).toBe(200);
    expect(res.headers['x-echo']).toBe('yes');
    expect(JSON.parse(res.text)).toEqual({ method: 'POST', url: '/echo', body: 'hi' });
  });

  it('aborts a call after its timeout, and the http action turns it into a retryable E_TIMEOUT', async () => {
    const started = Date.now();
    const ctx = { ...makeContext(), http: createHttpClient({ timeoutMs: 150 }) };
    const err = await thrown(() => createHttpConnector().actions.request({ url: `${server.url}/slow` }, ctx));
    expect(Date.now() - started).toBeLessThan(1500);
    expect(err).toMatchObject({ code: 'E_TIMEOUT', retryable: true });
  });

  it('the timeout and the caller’s signal also cut a body that stalls after its headers', async () => {
    const started = Date.now();
    const timedOut = await thrown(() => createHttpConnector().actions.request({ url: `${server.url}/stall` }, { ...makeContext(), http: createHttpClient({ timeoutMs: 150 }) }));
    expect(timedOut).toMatchObject({ code: 'E_TIMEOUT', retryable: true });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    const cancelled = await thrown(() => createHttpConnector().actions.request({ url: `${server.url}/stall` }, { ...makeContext(), signal: controller.signal }));
    expect(cancelled).toMatchObject({ code: 'E_ABORTED', retryable: false });
    expect(Date.now() - started).toBeLessThan(1500);
  });

  it('a signal aborted before the call starts stops it before anything is sent', async () => {
    const before = server.seen.length;
    const err = await thrown(() => createHttpClient()({ method: 'GET', url: `${server.url}/echo`, signal: AbortSignal.abort(new Error('gone')) }));
    expect((err as Error).message).toBe('gone');
    expect(server.seen.length).toBe(before);
  });

  it('a call still waiting for a connection ends at once when aborted, and is never sent', async () => {
    // One connection to the server, held by a slow call: the second call waits for it.
    const http = createHttpClient({ dispatcher: new Agent({ connections: 1 }) });
    const slow = http({ method: 'GET', url: `${server.url}/slow/held` });
    await new Promise((r) => setTimeout(r, 100));
    const controller = new AbortController();
    const queued = http({ method: 'GET', url: `${server.url}/echo/queued`, signal: controller.signal });
    const started = Date.now();
    setTimeout(() => controller.abort(new Error('not wanted')), 50);
    expect(((await thrown(() => queued)) as Error).message).toBe('not wanted');
    expect(Date.now() - started).toBeLessThan(1000);
    await slow;
    await new Promise((r) => setTimeout(r, 100));
    expect(server.seen.some((r) => r.url === '/echo/queued')).toBe(false);
  });

  it('runs over a given dispatcher such as undici’s MockAgent', async () => {
    const agent = new MockAgent();
    agent.disableNetConnect();
    agent.get('https://api.example.com').intercept({ path: '/x?a=1', method: 'POST', body: '{}' }).reply(201, { ok: 1 }, { headers: { 'content-type': 'application/json', 'X-Up': 'y' } });
    const http = createHttpClient({ dispatcher: agent });
    expect(await http({ method: 'post', url: 'https://api.example.com/x?a=1', body: '{}' })).toEqual({ status: 201, headers: { 'content-type': 'application/json', 'x-up': 'y' }, text: '{"ok":1}' });
    expect(await thrown(() => http({ method: 'GET', url: 'https://api.example.com/none' }))).toMatchObject({ code: 'UND_MOCK_ERR_MOCK_NOT_MATCHED' });
    await expect(http({ method: 'GET', url: 'ftp://api.example.com/x' })).rejects.toThrow(/^Invalid URL protocol/);
    await agent.close();
  });

  it('adds the user agent without changing the caller’s headers', async () => {
    const headers = { 'x-a': '1' };
    await createHttpClient({ userAgent: 'alloy/test' })({ method: 'GET', url: `${server.url}/ua`, headers });
    expect(server.seen.at(-1)!.headers).toMatchObject({ 'x-a': '1', 'user-agent': 'alloy/test' });
    expect(headers).toEqual({ 'x-a': '1' });
    await createHttpClient({ userAgent: 'alloy/test' })({ method: 'GET', url: `${server.url}/ua`, headers: { 'User-Agent': 'mine' } });
    expect(server.seen.at(-1)!.headers['user-agent']).toBe('mine');
  });

  it('a call cancelled by the caller’s signal is not retried', async () => {
    const controller = new AbortController();
    const ctx = { ...makeContext(), signal: controller.signal };
    setTimeout(() => controller.abort(), 50);
    const err = await thrown(() => createHttpConnector().actions.request({ url: `${server.url}/slow` }, ctx));
    expect(err).toMatchObject({ code: 'E_ABORTED', retryable: false });
  });

  it('an abort whose reason is a StepError (the engine’s step timeout) surfaces that error', async () => {
    const controller = new AbortController();
    const reason = new StepError('step "x" timed out after 50 ms', { code: 'E_STEP_TIMEOUT', retryable: true });
    setTimeout(() => controller.abort(reason), 50);
    const err = await thrown(() => createHttpConnector().actions.request({ url: `${server.url}/slow` }, { ...makeContext(), signal: controller.signal }));
    expect(err).toBe(reason);
  });

  it('http request: JSON body, query, bearer auth and the Idempotency-Key header', async () => {
    const ctx = makeContext({ idempotencyKey: 'exec-9:notify' });
    const out = (await createHttpConnector().actions.request(
      { method: 'POST', url: `${server.url}/hook`, query: { a: 1, b: 'x y' }, body: { hello: 'world' }, auth: { type: 'bearer', token: 'tok123' } },
      ctx,
    )) as any;
    expect(out.status).toBe(200);
    expect(out.body).toEqual({ method: 'POST', url: '/hook?a=1&b=x+y', body: '{"hello":"world"}' });
    const seen = server.seen.at(-1)!;
    expect(seen.headers.authorization).toBe('Bearer tok123');
    expect(seen.headers['content-type']).toBe('application/json');
    expect(seen.headers['idempotency-key']).toBe('exec-9:notify');
  });

  it('http request: a query is added to a copy of the URL, never to the parse later calls of the same URL share', async () => {
    const action = createHttpConnector().actions.request;
    const url = `${server.url}/shared`;
    const paths: string[] = [];
    for (const query of [undefined, { a: 1 }, undefined, { b: 2 }, {}]) {
      const out = (await action({ method: 'POST', url, ...(query ? { query } : {}), body: {} }, makeContext())) as any;
      paths.push(out.body.url);
    }
    expect(paths).toEqual(['/shared', '/shared?a=1', '/shared', '/shared?b=2', '/shared']);
    expect(await thrown(() => action({ url: 'not a url' }, makeContext()))).toMatchObject({ code: 'E_INPUT' });
  });

  it('http request: basic and header auth', async () => {
    const action = createHttpConnector().actions.request;
    await action({ url: `${server.url}/b`, auth: { type: 'basic', username: 'u', password: 'p:w' } }, makeContext());
    expect(server.seen.at(-1)!.headers.authorization).toBe(`Basic ${Buffer.from('u:p:w').toString('base64')}`);
    await action({ url: `${server.url}/h`, auth: { type: 'header', name: 'X-Api-Key', value: 'k1' } }, makeContext());
    expect(server.seen.at(-1)!.headers['x-api-key']).toBe('k1');
    expect(server.seen.at(-1)!.method).toBe('GET');
  });

  it('http request: 429 is retryable with Retry-After, 401 is final with the status', async () => {
    const action = createHttpConnector().actions.request;
    const limited = await thrown(() => action({ url: `${server.url}/limited` }, makeContext()));
    expect(limited).toMatchObject({ status: 429, retryable: true, retryAfterMs: 7000 });
    const denied = await thrown(() => action({ url: `${server.url}/unauthorized?token=secret` }, makeContext()));
    expect(denied).toMatchObject({ status: 401, retryable: false });
    expect(denied.message).not.toContain('secret'); // the query string stays out of messages
  });
});

describe('response size limit', () => {
  let big: Awaited<ReturnType<typeof startServer>>;
  beforeAll(async () => {
    // Streams 64 KiB chunks; /big/<n> sends n chunks, with or without Content-Length.
    big = await startServer((req, res) => {
      const m = /^\/big\/(\d+)(\?len)?/.exec(req.url);
      const n = Number(m?.[1] ?? 0);
      const chunk = Buffer.alloc(64 * 1024, 'a');
      const headers: Record<string, string> = { 'Content-Type': 'text/plain' };
      if (m?.[2]) headers['Content-Length'] = String(n * chunk.length);
      res.writeHead(200, headers);
      let sent = 0;
      const pump = () => {
        while (sent < n) {
          sent++;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      res.on('error', () => {});
      pump();
    });
  });
  afterAll(() => big.close());

  it('the default cap is 10 MiB: a chunked 11 MiB body is refused with a non-retryable E_RESPONSE_TOO_LARGE', async () => {
    const err = await thrown(() => createHttpClient()({ method: 'GET', url: `${big.url}/big/176` }));
    expect(err).toBeInstanceOf(StepError);
    expect(err).toMatchObject({ code: 'E_RESPONSE_TOO_LARGE', retryable: false });
    expect(err.message).toContain('10485760');
    // 9.5 MiB passes
    const ok = await createHttpClient()({ method: 'GET', url: `${big.url}/big/152` });
    expect(ok.text.length).toBe(152 * 64 * 1024);
  });

  it('the cap is configurable, and a Content-Length over it is refused before reading', async () => {
    const http = createHttpClient({ maxResponseBytes: 100_000 });
    expect(await thrown(() => http({ method: 'GET', url: `${big.url}/big/2` }))).toMatchObject({ code: 'E_RESPONSE_TOO_LARGE' });
    expect(await thrown(() => http({ method: 'GET', url: `${big.url}/big/2?len` }))).toMatchObject({ code: 'E_RESPONSE_TOO_LARGE' });
    expect((await http({ method: 'GET', url: `${big.url}/big/1` })).text.length).toBe(64 * 1024);
  });

  it('through an action the error stays final (the engine does not retry it)', async () => {
    const ctx = { ...makeContext(), http: createHttpClient({ maxResponseBytes: 1000 }) };
    const err = await thrown(() => createHttpConnector().actions.request({ url: `${big.url}/big/1` }, ctx));
    expect(err).toMatchObject({ code: 'E_RESPONSE_TOO_LARGE', retryable: false });
  });
});

describe('parsedUrl', () => {
  it('remembers a plain URL, but not one with user info or a query, nor a long one (they may carry credentials, or pin memory)', () => {
    expect(parsedUrl('https://api.example.com/a')).toBe(parsedUrl('https://api.example.com/a'));
    for (const text of ['https://user:secret@api.example.com/a', 'https://api.example.com/a?api_key=secret', `https://api.example.com/${'x'.repeat(3000)}`]) {
      expect(parsedUrl(text), text.slice(0, 60)).not.toBe(parsedUrl(text));
      expect(parsedUrl(text).href).toBe(new URL(text).href);
    }
  });
});
