/**
 * Forward one relayed request to the developer's local ingress listener with undici and
 * collect the answer. The body goes out as the exact bytes the app sent.
 */
import { request, type Dispatcher } from 'undici';
import type { HeaderPairs } from './protocol.js';
import { filterHeaderPairs } from './ingress-paths.js';

export interface LocalRequest {
  method: string;
  /** Ingress path plus query (already checked). */
  path: string;
  headers: HeaderPairs;
  body: Buffer;
}

export interface LocalResponse {
  status: number;
  headers: HeaderPairs;
  body: Buffer;
}

export interface ForwardOptions {
  timeoutMs?: number;
  maxResponseBytes?: number;
  dispatcher?: Dispatcher;
}

/** Join the local base URL (which may carry a path prefix) and an ingress path. */
export function localTarget(localUrl: string, path: string): string {
  const base = new URL(localUrl);
  const prefix = base.pathname.replace(/\/+$/, '');
  return `${base.origin}${prefix}${path}`;
}

export async function forwardToLocal(localUrl: string, req: LocalRequest, options: ForwardOptions = {}): Promise<LocalResponse> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const maxResponseBytes = options.maxResponseBytes ?? 10 * 1024 * 1024;
  const flat: string[] = [];
  for (const [name, value] of filterHeaderPairs(req.headers)) flat.push(name, value);
  const res = await request(localTarget(localUrl, req.path), {
    method: req.method as Dispatcher.HttpMethod,
    headers: flat,
    body: req.body,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    dispatcher: options.dispatcher,
  });
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxResponseBytes) {
      res.body.destroy();
      throw new Error(`local answer is larger than ${maxResponseBytes} bytes`);
    }
    chunks.push(chunk);
  }
  const headers: HeaderPairs = [];
  for (const [name, value] of Object.entries(res.headers)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) headers.push([name.toLowerCase(), String(v)]);
  }
  return { status: res.statusCode, headers: filterHeaderPairs(headers), body: Buffer.concat(chunks, size) };
}
