/**
 * `alloy logs -f` (the built binary) follows the runtime's server-sent event stream
 * (GET /v1/stream) from the last entry it printed, instead of polling /v1/logs: a stand-in
 * runtime on 127.0.0.1 records what the follower asks for and pushes entries over SSE.
 */
import { afterEach, describe, expect, it } from 'vitest';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { execa } from 'execa';
import { formatSse } from '../../src/net/sse.js';
import { BIN, requireBuild } from './helpers.js';
import { tempDir } from '../server/helpers.js';

const entry = (seq: number, id: string) => ({ seq, time: Date.now(), kind: 'execution', executionId: id, workflow: 'demo/w', status: 'succeeded', message: 'succeeded', data: { durationMs: 3 } });

describe('alloy logs -f', () => {
  let server: http.Server | undefined;
  let tmp: ReturnType<typeof tempDir> | undefined;
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    tmp?.cleanup();
  });

  it('prints the tail, then follows GET /v1/stream from there, and stops when the runtime ends the stream', async () => {
    requireBuild();
    tmp = tempDir('alloy-logs-sse-');
    const requests: string[] = [];
    let stream: http.ServerResponse | undefined;
    server = http.createServer((req, res) => {
      requests.push(req.url!);
      if (req.url!.startsWith('/v1/logs')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ entries: [entry(7, 'ex_tail')], last: 7 }));
      } else if (req.url!.startsWith('/v1/stream')) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(': hello\n\n');
        stream = res;
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const follower = execa(process.execPath, [BIN, 'logs', '-f', '--to', url], { cwd: tmp.dir, env: { NO_COLOR: '1' }, reject: false, all: true });
    let out = '';
    follower.all!.on('data', (d: Buffer) => (out += d.toString()));
    const deadline = Date.now() + 10_000;
    while (!stream && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(stream, out).toBeDefined();
    expect(requests.filter((u) => u.startsWith('/v1/stream'))).toEqual(['/v1/stream?after=7']);
    // An entry already printed (a reconnect overlap) is skipped; new ones print as they come.
    stream!.write(formatSse({ event: 'log', id: 7, data: JSON.stringify(entry(7, 'ex_tail')) }));
    stream!.write(formatSse({ event: 'execution', data: JSON.stringify({ id: 'ex_other' }) }));
    stream!.write(formatSse({ event: 'log', id: 8, data: JSON.stringify(entry(8, 'ex_live')) }));
    while (!out.includes('ex_live') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(out).toContain('ex_live');
    stream!.end();
    const end = await follower;
    expect(end.exitCode).toBe(0);
    expect(out.match(/ex_tail/g)).toHaveLength(1);
    expect(out).not.toContain('ex_other');
    expect(out).toContain('alloy dev stopped; no more logs');
    // One read of the tail, no polling.
    expect(requests.filter((u) => u.startsWith('/v1/logs'))).toHaveLength(1);
  });
});
