import { afterEach, describe, expect, it } from 'vitest';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { MAX_RESPONSE_BYTES, RuntimeClient } from '../../src/server/client.js';

/** A real server on 127.0.0.1 answering every request with `handler`; counts requests. */
async function serve(handler: http.RequestListener) {
  let hits = 0;
  const server = http.createServer((req, res) => {
    hits++;
    handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  return {
    url,
    hits: () => hits,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

describe('RuntimeClient', () => {
  const servers: { close(): Promise<void> }[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.close();
  });

  it('sends only to the runtime: a path naming another host is a usage error and nothing is sent there', async () => {
    const runtime = await serve((_req, res) => res.end('{"ok":true}'));
    const evil = await serve((_req, res) => res.end('{}'));
    servers.push(runtime, evil);
    const client = new RuntimeClient(runtime.url);
    for (const p of [`${evil.url}collect`, `http:${evil.url.slice('http:'.length)}x`]) {
      await expect(client.send('POST', p, { body: '{}' }), p).rejects.toMatchObject({ code: 'E_RUNTIME_PATH', exitCode: 2 });
    }
    // A leading "//" is not a host: it stays a path on the runtime.
    expect((await client.send('GET', `//${evil.url.slice('http://'.length)}x`)).status).toBe(200);
    expect(evil.hits()).toBe(0);
    expect(runtime.hits()).toBe(1);
    // A base with a prefix (a tunnel's /t/<name>/) keeps it; ".." cannot climb out of it.
    const prefixed = new RuntimeClient(`${runtime.url}t/abc/`);
    await expect(prefixed.send('GET', '../../healthz')).rejects.toMatchObject({ code: 'E_RUNTIME_PATH' });
  });

  it('caps the response body and fails clearly, with or without Content-Length', async () => {
    expect(MAX_RESPONSE_BYTES).toBe(16 * 1024 * 1024);
    const big = Buffer.alloc(64 * 1024, 'a');
    const withLength = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(big.length) });
      res.end(big);
    });
    const chunked = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      // Streams without an announced length: the cap must hold while reading.
      for (let i = 0; i < 16; i++) res.write(big);
      res.end();
    });
    servers.push(withLength, chunked);
    for (const s of [withLength, chunked]) {
      const client = new RuntimeClient(s.url, 32 * 1024);
      await expect(client.send('GET', '/v1/logs')).rejects.toMatchObject({ code: 'E_RESPONSE_TOO_LARGE', message: expect.stringContaining('more than 32768 bytes') });
    }
    // Under the cap: read whole.
    expect((await new RuntimeClient(withLength.url, big.length).send('GET', '/')).body).toBe(big.toString());
  });
});
