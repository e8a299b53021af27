/**
 * The shared listen helper's limits, with real sockets on 127.0.0.1: slowloris clients and
 * silent sockets are cut once the headers timeout passes (not up to 30 s later, Node's own
 * check interval), and past maxConnections new sockets are closed at once. Also what
 * `alloy serve` and `alloy dev` get from it.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  DEFAULT_HEADERS_TIMEOUT_MS,
  DEFAULT_KEEP_ALIVE_TIMEOUT_MS,
  DEFAULT_MAX_HEADERS_COUNT,
  DEFAULT_REQUEST_TIMEOUT_MS,
  defaultMaxConnections,
  listen,
  type Listening,
} from '../../src/http/listen.js';
import path from 'node:path';
import { cleanup, startTestServe, type TestServe } from '../serve/helpers.js';
import { openEventLog } from '../../src/server/event-log.js';
import { indexDefinitions } from '../../src/server/definitions.js';
import { createRuntimeServer } from '../../src/server/runtime-server.js';
import { fakeExecutor, projectOf, tempDir, workflow } from '../server/helpers.js';

const open: Array<Listening | TestServe> = [];
const sockets: net.Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const l of open.splice(0)) await l.close();
  cleanup();
});

async function start(options: Parameters<typeof listen>[1] = {}): Promise<{ l: Listening; port: number }> {
  const l = await listen((_req, res) => res.end('ok'), options);
  open.push(l);
  return { l, port: Number(new URL(l.url).port) };
}

interface Watched {
  socket: net.Socket;
  data: string;
  /** ms from connect to close, once closed. */
  closedAfter?: number;
  closed: Promise<void>;
  connected: Promise<void>;
}

function connect(port: number): Watched {
  const t0 = Date.now();
  const socket = net.connect(port, '127.0.0.1');
  sockets.push(socket);
  const w: Watched = { socket, data: '', closed: undefined as unknown as Promise<void>, connected: new Promise((r) => socket.once('connect', () => r())) };
  socket.on('data', (b) => (w.data += String(b)));
  socket.on('error', () => {});
  w.closed = new Promise((r) =>
    socket.once('close', () => {
      w.closedAfter = Date.now() - t0;
      r();
    }),
  );
  return w;
}

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('listen: limits', () => {
  it('sane defaults: headers 10 s, request 60 s, keep-alive 5 s, 256 header lines, a cap on sockets', async () => {
    const { l } = await start();
    expect(l.server.headersTimeout).toBe(DEFAULT_HEADERS_TIMEOUT_MS);
    expect(DEFAULT_HEADERS_TIMEOUT_MS).toBe(10_000);
    expect(l.server.requestTimeout).toBe(DEFAULT_REQUEST_TIMEOUT_MS);
    expect(l.server.keepAliveTimeout).toBe(DEFAULT_KEEP_ALIVE_TIMEOUT_MS);
    expect(l.server.maxHeadersCount).toBe(DEFAULT_MAX_HEADERS_COUNT);
    expect(l.server.maxConnections).toBe(defaultMaxConnections());
    expect(defaultMaxConnections()).toBeGreaterThanOrEqual(16);
    expect(defaultMaxConnections()).toBeLessThanOrEqual(1024);
  });

  it('a client trickling header lines (slowloris) and one that sends nothing are answered 408 and closed once the headers timeout passes', async () => {
    const { port } = await start({ headersTimeoutMs: 1_000 });
    const slow = connect(port);
    const silent = connect(port);
    await slow.connected;
    slow.socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    const trickle = setInterval(() => {
      if (!slow.socket.destroyed) slow.socket.write('x-a: b\r\n');
    }, 200);
    try {
      // Node checks every 30 s by default: such sockets lived up to headersTimeout + 30 s.
      await Promise.race([Promise.all([slow.closed, silent.closed]), wait(6_000)]);
    } finally {
      clearInterval(trickle);
    }
    expect(slow.closedAfter, 'slowloris socket still open after 6 s').toBeDefined();
    expect(silent.closedAfter, 'silent socket still open after 6 s').toBeDefined();
    expect(slow.closedAfter!).toBeLessThan(3_500);
    expect(slow.data).toContain('408');
  });

  it('a body trickled byte by byte is cut at the request timeout', async () => {
    const { port } = await start({ headersTimeoutMs: 1_000, requestTimeoutMs: 2_000 });
    const c = connect(port);
    await c.connected;
    c.socket.write('POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n');
    const trickle = setInterval(() => {
      if (!c.socket.destroyed) c.socket.write('a');
    }, 100);
    try {
      await Promise.race([c.closed, wait(6_000)]);
    } finally {
      clearInterval(trickle);
    }
    expect(c.closedAfter).toBeDefined();
    expect(c.closedAfter!).toBeLessThan(4_500);
  });

  it('past maxConnections a new socket is closed at once (reported once), the open ones keep working, and a freed slot is usable', async () => {
    const full: Array<{ maxConnections: number; refused: number }> = [];
    const { port } = await start({ maxConnections: 4, onConnectionsFull: (i) => full.push(i) });
    const held = [connect(port), connect(port), connect(port), connect(port)];
    await Promise.all(held.map((h) => h.connected));
    // Let the server accept all four before the fifth arrives.
    await wait(100);
    const refused = connect(port);
    await Promise.race([refused.closed, wait(3_000)]);
    expect(refused.closedAfter, 'the fifth socket was not closed').toBeDefined();
    expect(refused.data).toBe('');
    expect(full).toEqual([{ maxConnections: 4, refused: 1 }]);
    // The held ones are served.
    held[0].socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    await held[0].closed;
    expect(held[0].data).toMatch(/^HTTP\/1.1 200/);
    // One slot is free again.
    await wait(100);
    const again = connect(port);
    await again.connected;
    again.socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    await Promise.race([again.closed, wait(3_000)]);
    expect(again.data).toMatch(/^HTTP\/1.1 200/);
  });

  it('alloy serve takes maxConnections (--max-connections) and has the same timeouts', async () => {
    const serve = await startTestServe({ maxConnections: 2 });
    open.push(serve);
    const port = Number(new URL(serve.url).port);
    const a = connect(port);
    const b = connect(port);
    await Promise.all([a.connected, b.connected]);
    await wait(100);
    const c = connect(port);
    await Promise.race([c.closed, wait(3_000)]);
    expect(c.closedAfter, 'serve took a third socket past --max-connections 2').toBeDefined();
    a.socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    await Promise.race([a.closed, wait(3_000)]);
    expect(a.data).toMatch(/^HTTP\/1.1 200/);
  });

  it('alloy dev\'s runtime: a slowloris client is cut at its 10 s headers timeout (within a second), and it takes maxConnections', async () => {
    const tmp = tempDir();
    const runtime = createRuntimeServer({
      log: openEventLog({ file: path.join(tmp.dir, 'dev.sqlite') }),
      definitions: indexDefinitions(projectOf(tmp.dir, [workflow('go', { event: 'go' })])),
      executor: fakeExecutor().executor,
      maxConnections: 2,
    });
    const base = await runtime.listen();
    try {
      const port = Number(new URL(base).port);
      const slow = connect(port);
      await slow.connected;
      slow.socket.write('POST /v1/run/event HTTP/1.1\r\nHost: 127.0.0.1\r\n');
      const trickle = setInterval(() => {
        if (!slow.socket.destroyed) slow.socket.write('x-a: b\r\n');
      }, 500);
      const idle = connect(port);
      await idle.connected;
      await wait(100);
      const refused = connect(port);
      try {
        await Promise.race([refused.closed, wait(3_000)]);
        expect(refused.closedAfter, 'dev took a socket past maxConnections 2').toBeDefined();
        await Promise.race([slow.closed, wait(13_000)]);
      } finally {
        clearInterval(trickle);
      }
      expect(slow.closedAfter, 'slowloris socket still open 13 s on').toBeDefined();
      expect(slow.closedAfter!).toBeGreaterThanOrEqual(9_500);
      expect(slow.data).toContain('408');
    } finally {
      await runtime.close();
      tmp.cleanup();
    }
  }, 20_000);

  it('alloy serve on a port in use or an address not of this machine: E_PORT_IN_USE / E_LISTEN, exit 1 (it was an internal error, "a bug in alloy")', async () => {
    const { mkdtemp, rm } = await import('node:fs/promises');
    const os = await import('node:os');
    const { runBin } = await import('../helpers/cli.js');
    const { port } = await start();
    const dir = await mkdtemp(path.join(os.tmpdir(), 'alloy-listen-'));
    try {
      const taken = await runBin(['serve', '--port', String(port), '--data', path.join(dir, 'data'), '--store', path.join(dir, 'store')], { cwd: dir });
      expect(taken.code).toBe(1);
      expect(taken.stderr).toContain('E_PORT_IN_USE');
      expect(taken.stderr).toContain('--port');
      expect(taken.stderr).not.toContain('internal error');
      const foreign = await runBin(['serve', '--port', '0', '--host', '999.1.1.1', '--data', path.join(dir, 'data'), '--store', path.join(dir, 'store')], { cwd: dir });
      expect(foreign.code).toBe(1);
      expect(foreign.stderr).toContain('E_LISTEN');
      expect(foreign.stderr).not.toContain('internal error');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 30_000);
});
