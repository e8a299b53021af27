/** Writing answers: JSON with no-store, and errors in the one shape. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError } from './error.js';

export function sendJson(res: ServerResponse, status: number, body: unknown, headers?: Record<string, string>): void {
  const text = JSON.stringify(body);
  const own = { 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(text)), 'cache-control': 'no-store' };
  res.writeHead(status, headers ? { ...own, ...headers } : own);
  res.end(text);
}

export function sendText(res: ServerResponse, status: number, text: string, contentType: string): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': String(Buffer.byteLength(text)), 'cache-control': 'no-store' });
  res.end(text);
}

/**
 * Answers any thrown value: an HttpError as itself, anything else as 500 E_INTERNAL with no
 * detail (internal messages may hold paths or secrets). A request whose body was not read
 * gets `connection: close` rather than having it drained.
 */
export function sendError(req: IncomingMessage, res: ServerResponse, err: unknown): void {
  const e = err instanceof HttpError ? err : new HttpError(500, 'E_INTERNAL', 'internal error', 'see the server log');
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const headers: Record<string, string> = { ...e.headers };
  if (!req.complete) headers.connection = 'close';
  sendJson(res, e.status, e.toBody(), headers);
}

/** What one client of a long-lived stream (server-sent events) may have waiting in memory. */
export const MAX_STREAM_BUFFER_BYTES = 4 * 1024 * 1024;

/**
 * Writes to a long-lived response. A client that stops reading would have every later event
 * buffered here without bound: past MAX_STREAM_BUFFER_BYTES its stream is ended (false), and
 * an EventSource reconnects and asks for what it missed.
 */
export function writeStream(res: ServerResponse, text: string): boolean {
  if (res.writableEnded || res.destroyed) return false;
  res.write(text);
  if (res.writableLength <= MAX_STREAM_BUFFER_BYTES) return true;
  res.destroy();
  return false;
}

export function headerValue(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}
