import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { thirdPartyJson } from '../helpers/fixtures.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface HmacVector {
  secret: string;
  raw_body: string;
  expected_hmac_header: string;
  headers: Record<string, string>;
}

export async function loadHmacVector(): Promise<HmacVector> {
  return thirdPartyJson<HmacVector>('shopify/webhook-hmac-vector.json');
}

/** base64(HMAC-SHA256(key=utf8(secret), msg=raw body)), the vector's algorithm. */
export function shopifyHmac(secret: string, body: Buffer): string {
  return createHmac('sha256', Buffer.from(secret, 'utf8')).update(body).digest('base64');
}

export async function tempDir(prefix = 'alloy-tunnel-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export interface Received {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
  hmacValid: boolean | undefined;
}

export interface StandInDevServer {
  url: string;
  port: number;
  received: Received[];
  /** Delay before answering (ms), to provoke relay timeouts. */
  delayMs: number;
  /** Statuses to answer with, one per request, before the normal answer resumes (e.g. [503, 429]). */
  failWith: number[];
  close(): Promise<void>;
}

/**
 * A stand-in for the dev server's ingress listener: a real node:http server that verifies
 * the Shopify HMAC over the exact bytes it received (401 when wrong) and records everything.
 */
export async function startStandInDevServer(secret: string, port = 0): Promise<StandInDevServer> {
  const received: Received[] = [];
  const state = { delayMs: 0 };
  const failWith: number[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const header = req.headers['x-shopify-hmac-sha256'];
      let hmacValid: boolean | undefined;
      if (typeof header === 'string') {
        const expected = Buffer.from(shopifyHmac(secret, body));
        const got = Buffer.from(header);
        hmacValid = expected.length === got.length && timingSafeEqual(expected, got);
      }
      received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, hmacValid });
      const forced = failWith.shift();
      const answer = (): void => {
        if (forced !== undefined) {
          res.writeHead(forced, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: `forced ${forced}` }));
          return;
        }
        if (hmacValid === false) {
          res.writeHead(401, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: 'bad hmac' }));
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json', 'x-dev-server': 'stand-in' });
        res.end(JSON.stringify({ ok: true, n: received.length, bytes: body.length }));
      };
      if (state.delayMs > 0) {
        const t = setTimeout(() => {
          timers.delete(t);
          answer();
        }, state.delayMs);
        timers.add(t);
      } else answer();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
  const actual = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${actual}`,
    port: actual,
    received,
    failWith,
    get delayMs() {
      return state.delayMs;
    },
    set delayMs(v: number) {
      state.delayMs = v;
    },
    close: () =>
      new Promise<void>((resolve) => {
        // Answers still waiting on a delay are abandoned with their connections.
        for (const t of timers) clearTimeout(t);
        timers.clear();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A free loopback port (listen then close): for servers that must come back on the same port. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface CapturedLogger {
  lines: string[];
  info(msg: string): void;
  warn(msg: string): void;
}

export function captureLogger(): CapturedLogger {
  const lines: string[] = [];
  return {
    lines,
    info: (m) => void lines.push(`info ${m}`),
    warn: (m) => void lines.push(`warn ${m}`),
  };
}

/** Poll until `check` is true (bounded): for events that happen on other sockets. */
export async function waitFor(check: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export async function post(url: string, body: Buffer | string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; text: string }> {
  const res = await fetch(url, { method: 'POST', body, headers });
  return { status: res.status, headers: res.headers, text: await res.text() };
}
