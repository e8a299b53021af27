/**
 * The relay wire protocol: JSON text frames over one WebSocket per developer.
 *
 * Bodies travel as base64 inside the frame so every byte the app sent reaches the dev
 * server unchanged (a Shopify HMAC is computed over the raw bytes: re-encoding JSON, or
 * decoding as UTF-8, would break it).
 *
 *   relay  -> client  hello     {name, publicUrl, queued, dropped}
 *   client -> relay   hello-ack {dropped}            (the drop report was shown; relay resets it)
 *   relay  -> client  request   {id, method, path, headers, body, queued, receivedAt}
 *   client -> relay   response  {id, status, headers, body}   (for queued requests: the ack,
 *                                                     unless status is 5xx, 408 or 429)
 *   client -> relay   nack      {id, error}          (queued request not taken: local server
 *                                                     unreachable or answered 5xx/408/429;
 *                                                     the relay keeps it and retries)
 */

/** Header list as [name, value] pairs (lower-case names), repeatable names allowed. */
export type HeaderPairs = Array<[string, string]>;

export interface DropReport {
  /** Requests the relay refused because this name's queue was full (answered 507). */
  overflow: number;
  /** Queued requests that expired before the developer reconnected. */
  expired: number;
  /**
   * Queued requests whose file on the relay could not be read or parsed; each was moved aside
   * to `<file>.bad` in the relay's queue directory for inspection. Optional on the wire: older
   * relays do not send it.
   */
  unreadable?: number;
}

export interface HelloFrame {
  type: 'hello';
  name: string;
  /** Base of the public URL; ingress paths are appended (`<publicUrl>/v1/webhooks/shopify`). */
  publicUrl: string;
  /** Requests waiting on disk that will be delivered now, in order. */
  queued: number;
  dropped: DropReport;
}

export interface HelloAckFrame {
  type: 'hello-ack';
  dropped: DropReport;
}

export interface RequestFrame {
  type: 'request';
  id: string;
  method: string;
  /** Ingress path plus query, e.g. `/v1/webhooks/shopify`. */
  path: string;
  headers: HeaderPairs;
  /** base64 of the exact request bytes. */
  body: string;
  /** True when the request waited in the relay's queue (the app was already answered 202). */
  queued: boolean;
  /** ISO time the relay received it. */
  receivedAt: string;
}

export interface ResponseFrame {
  type: 'response';
  id: string;
  status: number;
  headers: HeaderPairs;
  body: string;
}

export interface NackFrame {
  type: 'nack';
  id: string;
  error: string;
}

export type RelayToClientFrame = HelloFrame | RequestFrame;
export type ClientToRelayFrame = HelloAckFrame | ResponseFrame | NackFrame;

/**
 * Local answers that do not acknowledge a queued request: the dev server could not take it
 * now (5xx: e.g. 503 while reloading; 408 Request Timeout and 429 Too Many Requests, which
 * RFC 9110 15.5.9 and RFC 6585 4 define as "try again"). The app was already answered 202,
 * so the relay must keep such a request and redeliver it.
 */
export function isRetryableStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

/** WebSocket path the relay accepts developer connections on. */
export const RELAY_CONNECT_PATH = '/v1/tunnel/connect';
/** Header naming the tunnel the developer asks for (must match the token's name). */
export const TUNNEL_NAME_HEADER = 'x-alloy-tunnel-name';

/** WebSocket close codes (4000-4999 are for applications, RFC 6455 section 7.4.2). */
export const CLOSE_REPLACED = 4409;
export const CLOSE_SHUTDOWN = 1001;

export function parseFrame<T extends { type: string }>(data: unknown): T | undefined {
  try {
    const text = Buffer.isBuffer(data)
      ? data.toString('utf8')
      : Array.isArray(data)
        ? Buffer.concat(data as Buffer[]).toString('utf8')
        : data instanceof ArrayBuffer
          ? Buffer.from(data).toString('utf8')
          : String(data);
    const value = JSON.parse(text) as unknown;
    if (value && typeof value === 'object' && typeof (value as { type?: unknown }).type === 'string') return value as T;
  } catch {
    // fall through: a malformed frame is ignored by the caller
  }
  return undefined;
}
