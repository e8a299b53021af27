/**
 * The shared router's options for a server with its own wording (alloy dev): its 404/405, its
 * error handler, HEAD without GET, exact trailing slashes and NUL allowed; and the defaults
 * serve and the relay rely on. Real HTTP servers on 127.0.0.1.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { request } from 'undici';
import net from 'node:net';
import { createRouter, HttpError, listen, readBody, sendJson, type Listening, type RequestContext, type RouterOptions } from '../../src/http/index.js';

let server: Listening | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function serve(options: Partial<RouterOptions<RequestContext>> = {}): Promise<string> {
  const route = createRouter<RequestContext>(
    [
      { method: 'GET', path: '/a', handler: ({ res }) => sendJson(res, 200, { ok: true }) },
      { method: 'GET', path: '/items/:id', handler: ({ res, params }) => sendJson(res, 200, { id: params.id }) },
      { method: 'POST', path: '/fail', handler: () => Promise.reject(new Error('boom')) },
    ],
    { context: (base) => base, ...options },
  );
  server = await listen((req, res) => void route(req, res));
  return server.url;
}

async function get(url: string, method = 'GET') {
  const res = await request(url, { method: method as 'GET' });
  const text = await res.body.text();
  return { status: res.statusCode, allow: res.headers.allow, json: text ? JSON.parse(text) : undefined };
}

describe('createRouter', () => {
  it('by default answers HEAD as GET, ignores a trailing slash, refuses NUL and names the pattern in a 405', async () => {
    const base = await serve();
    expect((await get(`${base}/a`, 'HEAD')).status).toBe(200);
    expect((await get(`${base}/a/`)).status).toBe(200);
    expect((await get(`${base}/items/x%00y`)).json.error.code).toBe('E_BAD_REQUEST');
    const notAllowed = await get(`${base}/items/7`, 'DELETE');
    expect([notAllowed.status, notAllowed.allow, notAllowed.json.error.message]).toEqual([405, 'GET', 'DELETE is not allowed on /items/:id']);
    expect((await get(`${base}/nope`)).json.error.code).toBe('E_NO_ROUTE');
  });

  it("takes a server's own 404/405, error handler and exact matching", async () => {
    const seen: string[] = [];
    const base = await serve({
      headAsGet: false,
      ignoreTrailingSlash: false,
      refuseNul: false,
      noRoute: ({ method, pathname, allowed }) => new HttpError(allowed.length ? 405 : 404, allowed.length ? 'E_METHOD' : 'E_NOT_FOUND', `${method} ${pathname} [${allowed.join(',')}]`),
      onError: (err, _req, res, route) => {
        seen.push(`${route?.path ?? '-'} ${(err as Error).message}`);
        sendJson(res, err instanceof HttpError ? err.status : 599, { mine: true });
      },
    });
    expect((await get(`${base}/a`, 'HEAD')).status).toBe(405);
    expect((await get(`${base}/a/`)).status).toBe(404);
    expect((await get(`${base}/items/x%00y`)).json).toEqual({ id: 'x\u0000y' });
    expect((await get(`${base}/fail`, 'POST')).status).toBe(599);
    expect(seen).toEqual(['- HEAD /a [GET]', '- GET /a/ []', '/fail boom']);
  });

  it('a client that hangs up in the middle of its body is not an internal error (anyone could fill the log with them)', async () => {
    const internal: unknown[] = [];
    let failed: ((err: unknown) => void) | undefined;
    const done = new Promise<unknown>((r) => (failed = r));
    const route = createRouter<RequestContext>(
      [{ method: 'POST', path: '/body', handler: async ({ req, res }) => sendJson(res, 200, { n: (await readBody(req, 1024 * 1024).catch((err) => { failed?.(err); throw err; })).length }) }],
      { context: (base) => base, onInternalError: (err) => internal.push(err) },
    );
    server = await listen((req, res) => void route(req, res));
    const { port } = new URL(server.url);
    const socket = net.connect(Number(port), '127.0.0.1');
    socket.write('POST /body HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"a":');
    await new Promise((r) => setTimeout(r, 100));
    socket.destroy();
    const err = await done;
    await new Promise((r) => setTimeout(r, 50));
    expect(err).toBeInstanceOf(HttpError);
    expect((err as HttpError).status).toBe(400);
    expect(internal).toEqual([]);
  });

  it('reads a body that arrived whole with its headers, one sent in parts later, and refuses either past the limit', async () => {
    // The route reads only after an await (as serve's do after authenticating): by then a body
    // sent with its headers has been parsed whole, and is taken from the stream's buffer.
    const route = createRouter<RequestContext>(
      [
        {
          method: 'POST',
          path: '/body',
          handler: async ({ req, res }) => {
            await new Promise((r) => setImmediate(r));
            const whole = req.complete;
            const body = await readBody(req, 64);
            sendJson(res, 200, { whole, text: body.toString('utf8') });
          },
        },
      ],
      { context: (base) => base },
    );
    server = await listen((req, res) => void route(req, res));
    const { port } = new URL(server.url);
    const raw = (parts: string[]) =>
      new Promise<string>((resolve, reject) => {
        const socket = net.connect(Number(port), '127.0.0.1');
        let out = '';
        socket.on('data', (d) => {
          out += d;
          if (/\r\n\r\n[\s\S]*\}$/.test(out)) {
            socket.destroy();
            resolve(out);
          }
        });
        socket.on('error', reject);
        (async () => {
          for (const p of parts) {
            socket.write(p);
            await new Promise((r) => setTimeout(r, 30));
          }
        })();
      });
    const head = (extra: string) => `POST /body HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n${extra}\r\n`;
    const whole = await raw([`${head('Content-Length: 11\r\n')}{"a":"bcd"}`]);
    expect(whole).toMatch(/^HTTP\/1.1 200/);
    expect(whole).toContain('{"whole":true,"text":"{\\"a\\":\\"bcd\\"}"}');
    const chunked = await raw([`${head('Transfer-Encoding: chunked\r\n')}5\r\n{"a":\r\n6\r\n"bcd"}\r\n0\r\n\r\n`]);
    expect(chunked).toContain('{"whole":true,"text":"{\\"a\\":\\"bcd\\"}"}');
    const parts = await raw([`${head('Content-Length: 11\r\n')}{"a"`, ':"bc', 'd"}']);
    expect(parts).toContain('{"whole":false,"text":"{\\"a\\":\\"bcd\\"}"}');
    // 70 bytes against a limit of 64, undeclared (chunked) so only reading finds it: whole and in parts.
    const big = `"${'x'.repeat(68)}"`;
    for (const sent of [[`${head('Transfer-Encoding: chunked\r\n')}46\r\n${big}\r\n0\r\n\r\n`], [`${head('Transfer-Encoding: chunked\r\n')}46\r\n${big.slice(0, 30)}`, `${big.slice(30)}\r\n0\r\n\r\n`]]) {
      const answer = await raw(sent);
      expect(answer).toMatch(/^HTTP\/1.1 413/);
      expect(answer).toContain('E_BODY_TOO_LARGE');
    }
  });
});
