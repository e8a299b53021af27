/**
 * Request bodies alloy's servers refuse by their headers: a compressed body (alloy never
 * decompresses) is 415 E_CONTENT_ENCODING and nothing is stored; before, it was parsed as
 * JSON (400 quoting binary) or, through the relay, queued and forwarded as is.
 */
import { gzipSync } from 'node:zlib';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openEventLog } from '../../src/server/event-log.js';
import { indexDefinitions } from '../../src/server/definitions.js';
import { createRuntimeServer } from '../../src/server/runtime-server.js';
import { fakeExecutor, http, projectOf, tempDir, workflow } from '../server/helpers.js';
import { call, cleanup, startTestServe } from '../serve/helpers.js';
import { parseJson } from '../../src/http/body.js';

describe('compressed bodies', () => {
  it('alloy dev: gzip, br and a list of encodings are 415 E_CONTENT_ENCODING, nothing stored; identity is fine', async () => {
    const tmp = tempDir();
    const log = openEventLog({ file: path.join(tmp.dir, 'dev.sqlite') });
    const server = createRuntimeServer({ log, definitions: indexDefinitions(projectOf(tmp.dir, [workflow('go', { event: 'go' })])), executor: fakeExecutor().executor });
    const base = await server.listen();
    try {
      const body = JSON.stringify({ event: 'go', data: {} });
      for (const enc of ['gzip', 'br', 'gzip, identity', 'x-anything']) {
        const r = await http('POST', `${base}/v1/run/event`, enc === 'gzip' ? gzipSync(body) : body, { 'content-type': 'application/json', 'content-encoding': enc });
        expect(r.status, enc).toBe(415);
        expect(r.json.error.code).toBe('E_CONTENT_ENCODING');
        expect(r.headers['accept-encoding']).toBe('identity'); // RFC 9110 §15.5.16
      }
      expect(log.countDeliveries()).toBe(0);
      const ok = await http('POST', `${base}/v1/run/event`, body, { 'content-type': 'application/json', 'content-encoding': 'identity' });
      expect(ok.status).toBe(202);
      expect(log.countDeliveries()).toBe(1);
    } finally {
      await server.close();
      tmp.cleanup();
    }
  });

  it('alloy serve: a gzip body is 415 E_CONTENT_ENCODING', async () => {
    const serve = await startTestServe();
    try {
      const r = await http('POST', `${serve.url}/v1/users`, gzipSync(JSON.stringify({ id: 'u1' })), { 'content-type': 'application/json', 'content-encoding': 'gzip', authorization: `Bearer ${serve.admin}` });
      expect(r.status).toBe(415);
      expect(r.json.error.code).toBe('E_CONTENT_ENCODING');
      expect(await serve.state.users.get('u1')).toBeUndefined();
    } finally {
      await serve.close();
      cleanup();
    }
  });
});

describe('numbers JSON cannot carry', () => {
  it('a number past 1.8e308 (JSON.parse: Infinity) is 400 E_BAD_JSON; near the limit and in strings it is fine', () => {
    // Small bodies, ones the depth walk covers, and ones over 64 KB (each walked for it). A long
    // mantissa with a two-digit exponent overflows too (a pattern over the text missed it).
    const longMantissa = `1${'0'.repeat(240)}e70`;
    for (const pad of ['', 'x'.repeat(1_000), 'x'.repeat(70_000)]) {
      for (const text of ['{"q":1e309}', '{"q":-1E+400}', `{"q":${'9'.repeat(400)}}`, '[[{"q":2e308}]]', '1e309', `{"q":${longMantissa}}`, `[-${longMantissa}]`]) {
        const body = pad && text !== '1e309' ? `{"pad":"${pad}","v":${text}}` : text;
        expect(() => parseJson(Buffer.from(body)), `${pad.length} ${text}`).toThrow(expect.objectContaining({ status: 400, code: 'E_BAD_JSON' }));
      }
      expect(parseJson(Buffer.from(`{"pad":"${pad}","q":1.7e308,"s":"1e309"}`))).toMatchObject({ q: 1.7e308, s: '1e309' });
    }
    expect(parseJson(Buffer.from('{"q":1.7e308,"s":"1e309","t":1e-400,"z":-0}'))).toEqual({ q: 1.7e308, s: '1e309', t: 0, z: -0 });
    // 1 MB of 308-digit numbers, each one short of overflowing, is taken.
    const runs = `[${Array.from({ length: 3200 }, () => '1'.repeat(308)).join(',')}]`;
    expect((parseJson(Buffer.from(runs)) as number[]).length).toBe(3200);
  });

  it('alloy serve: an event with quantity 1e309 is refused, not checked as an integer ≥ 1 and stored as null', async () => {
    const serve = await startTestServe();
    try {
      const ingest = await serve.key('ingest');
      await call(serve.url, 'POST', '/v1/users', { token: serve.admin, body: { id: 'u1' } });
      const r = await fetch(`${serve.url}/v1/run/event`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ingest}`, 'content-type': 'application/json' },
        body: '{"event":"acme.order.requested","userId":"u1","data":{"quantity":1e309}}',
      });
      expect(r.status).toBe(400);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe('E_BAD_JSON');
    } finally {
      await serve.close();
      cleanup();
    }
  });
});
