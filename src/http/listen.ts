/**
 * One listen helper for alloy's servers: binds (127.0.0.1 unless told), resolves with the
 * base URL, sets the limits below, and returns an idempotent close that stops accepting,
 * lets in-flight answers finish, and drops idle keep-alive sockets.
 *
 * Limits (docs/security.md, "Connections"): a client that trickles its headers (slowloris) or
 * opens a socket and sends nothing is answered 408 and closed once `headersTimeoutMs` passes
 * (checked every second: Node's own check runs every 30 s, which let such a socket live 45 s);
 * a body must arrive within `requestTimeoutMs`; idle keep-alive sockets close after
 * `keepAliveTimeoutMs`; past `maxConnections` open sockets a new one is closed at once rather
 * than let sockets use up the process's file descriptors.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { AlloyError } from '../errors.js';

/** Headers must be complete this long after a request starts (or a socket opens). */
export const DEFAULT_HEADERS_TIMEOUT_MS = 10_000;
/** The whole request (headers and body) must arrive within this. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;
/** An idle keep-alive socket is closed after this. */
export const DEFAULT_KEEP_ALIVE_TIMEOUT_MS = 5_000;
/** Header lines read per request; later ones are dropped (Node's own default is 2000). */
export const DEFAULT_MAX_HEADERS_COUNT = 256;
/** Bytes of request line plus headers; more is answered 431 (Node's default, fixed here whatever NODE_OPTIONS says). */
export const DEFAULT_MAX_HEADER_SIZE = 16 * 1024;
/** Open sockets at most (also capped at 3/4 of the process's file descriptor limit). */
export const DEFAULT_MAX_CONNECTIONS = 1024;
/** How often timed-out requests are looked for. */
const CHECK_INTERVAL_MS = 1_000;

export interface ListenOptions {
  host?: string;
  port?: number;
  /** Default 60 s. */
  requestTimeoutMs?: number;
  /** Default min(10 s, requestTimeoutMs). */
  headersTimeoutMs?: number;
  /** Idle keep-alive sockets are closed after this; default 5 s. */
  keepAliveTimeoutMs?: number;
  /** Default 256. */
  maxHeadersCount?: number;
  /** Default 1024, at most 3/4 of the file descriptor limit. */
  maxConnections?: number;
  /** Called (at most once a minute) when a socket was refused because maxConnections were open. */
  onConnectionsFull?: (info: { maxConnections: number; refused: number }) => void;
  /** How long close() waits before dropping connections still open. Default 2 s. */
  closeGraceMs?: number;
}

export interface Listening {
  server: http.Server;
  url: string;
  close(): Promise<void>;
}

export function baseUrl(server: http.Server): string {
  const a = server.address() as AddressInfo;
  const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  return `http://${host}:${a.port}`;
}

let fdLimit: number | null | undefined;
/** The soft limit on open files (Linux; Node raises it to the hard limit at start), else null. */
function openFileLimit(): number | null {
  if (fdLimit !== undefined) return fdLimit;
  fdLimit = null;
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const soft = line ? Number(line.split(/\s{2,}/)[1]) : NaN;
    if (Number.isFinite(soft) && soft > 0) fdLimit = soft;
  } catch {
    // not Linux: the fixed default stands
  }
  return fdLimit;
}

/** The default cap on open sockets: DEFAULT_MAX_CONNECTIONS, leaving a quarter of the file descriptors for the rest. */
export function defaultMaxConnections(): number {
  const limit = openFileLimit();
  return limit === null ? DEFAULT_MAX_CONNECTIONS : Math.max(16, Math.min(DEFAULT_MAX_CONNECTIONS, Math.floor(limit * 0.75)));
}

/**
 * Applies the limits to a server made elsewhere (before it listens). Returns nothing; the
 * `drop` events (sockets refused past maxConnections) go to `onConnectionsFull`.
 */
export function applyServerLimits(server: http.Server, options: Omit<ListenOptions, 'host' | 'port' | 'closeGraceMs'> = {}): void {
  server.requestTimeout = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  server.headersTimeout = options.headersTimeoutMs ?? Math.min(DEFAULT_HEADERS_TIMEOUT_MS, server.requestTimeout);
  server.keepAliveTimeout = options.keepAliveTimeoutMs ?? DEFAULT_KEEP_ALIVE_TIMEOUT_MS;
  server.maxHeadersCount = options.maxHeadersCount ?? DEFAULT_MAX_HEADERS_COUNT;
  server.maxConnections = options.maxConnections ?? defaultMaxConnections();
  // Read when the server starts listening (Node's default is 30 s: a slowloris client lived
  // headersTimeout + up to 30 s). Not in @types/node.
  (server as unknown as { connectionsCheckingInterval: number }).connectionsCheckingInterval = Math.min(CHECK_INTERVAL_MS, server.headersTimeout);
  const onFull = options.onConnectionsFull;
  if (onFull) {
    let refused = 0;
    let told = 0;
    server.on('drop', () => {
      refused++;
      const now = Date.now();
      if (now - told < 60_000) return;
      told = now;
      onFull({ maxConnections: server.maxConnections, refused });
      refused = 0;
    });
  }
}

/**
 * A failed bind said for people (it was "internal error listen EADDRINUSE … a bug in alloy"
 * from `alloy serve`): the port taken, a privileged port, an address not on this machine.
 * Undefined for other errors.
 */
export function listenError(err: unknown, host: string, port: number, portFlag = '--port'): AlloyError | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  if (code === 'EADDRINUSE') {
    return new AlloyError('E_PORT_IN_USE', `port ${port} on ${host} is already in use`, { hint: `pass another port with ${portFlag} <port> (or ${portFlag} 0 for any free one), or stop the other process`, cause: err, details: { host, port } });
  }
  if ((code === 'EACCES' || code === 'EPERM') && port > 0 && port < 1024) {
    return new AlloyError('E_LISTEN', `cannot listen on ${where}: permission denied (ports below 1024 need privileges)`, { hint: `pass a port above 1024 with ${portFlag} <port>`, cause: err, details: { host, port } });
  }
  if (code === 'EACCES' || code === 'EPERM') {
    // Not a privileged port: a reserved range (Windows), a security policy (SELinux), a sandbox.
    return new AlloyError('E_LISTEN', `cannot listen on ${where}: permission denied by the system`, { hint: `pass another port with ${portFlag} <port> (or ${portFlag} 0 for any free one)`, cause: err, details: { host, port } });
  }
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_NONAME' || code === 'EAFNOSUPPORT') {
    return new AlloyError('E_LISTEN', `cannot listen on ${where}: ${host} is not an address of this machine`, { hint: 'pass --host with an address of this machine (127.0.0.1 for this machine only, 0.0.0.0 for every interface)', cause: err, details: { host, port } });
  }
  return undefined;
}

export async function listen(handler: http.RequestListener, options: ListenOptions = {}): Promise<Listening> {
  const server = http.createServer({ maxHeaderSize: DEFAULT_MAX_HEADER_SIZE }, handler);
  applyServerLimits(server, options);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  let closing: Promise<void> | undefined;
  return {
    server,
    url: baseUrl(server),
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        setTimeout(() => server.closeAllConnections(), options.closeGraceMs ?? 2_000).unref();
      });
      return closing;
    },
  };
}
