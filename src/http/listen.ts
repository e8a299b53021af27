/**
 * One listen helper for alloy's servers: binds (127.0.0.1 unless told), resolves with the
 * base URL, sets request/header timeouts, and returns an idempotent close that stops
 * accepting, lets in-flight answers finish, and drops idle keep-alive sockets.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ListenOptions {
  host?: string;
  port?: number;
  /** Default 60 s. */
  requestTimeoutMs?: number;
  /** Default min(15 s, requestTimeoutMs). */
  headersTimeoutMs?: number;
  /** Idle keep-alive sockets are closed after this; default Node's (5 s). */
  keepAliveTimeoutMs?: number;
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

export async function listen(handler: http.RequestListener, options: ListenOptions = {}): Promise<Listening> {
  const server = http.createServer(handler);
  server.requestTimeout = options.requestTimeoutMs ?? 60_000;
  server.headersTimeout = options.headersTimeoutMs ?? Math.min(15_000, server.requestTimeout);
  if (options.keepAliveTimeoutMs !== undefined) server.keepAliveTimeout = options.keepAliveTimeoutMs;
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
