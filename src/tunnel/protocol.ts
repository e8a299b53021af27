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

import { jsonTooDeep } from '../core/json-depth.js';
import { getValidator } from '../core/schema-check.js';

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

/** WebSocket close code for a frame that breaks the protocol (RFC 6455 section 7.4.1: policy violation). */
export const CLOSE_BAD_FRAME = 1008;
/** No frame of this protocol nests deeper than this; deeper text is refused before parsing. */
const FRAME_MAX_DEPTH = 6;

const FRAME_DEFS: Record<string, string> = { hello: 'hello', 'hello-ack': 'helloAck', request: 'request', response: 'response', nack: 'nack' };

export type DecodedFrame<T> = { ok: true; frame: T } | { ok: false; reason: string };

/**
 * Parses one frame and checks it against schemas/tunnel-frame.schema.json (ajv; standalone
 * code generated at build time) and against the frame types this side accepts. Nothing of a
 * frame is used before it passed: a peer that sends `{"id": {"toString": 0}}` gets a reason,
 * not a crash. The caller closes that one connection with CLOSE_BAD_FRAME.
 */
export function decodeFrame<T extends { type: string }>(data: unknown, accepted: readonly T['type'][]): DecodedFrame<T> {
  let text: string;
  if (typeof data === 'string') text = data;
  else if (Buffer.isBuffer(data)) text = data.toString('utf8');
  else if (Array.isArray(data)) text = Buffer.concat(data as Buffer[]).toString('utf8');
  else if (data instanceof ArrayBuffer) text = Buffer.from(data).toString('utf8');
  else return { ok: false, reason: 'not a text frame' };
  if (jsonTooDeep(text, FRAME_MAX_DEPTH)) return { ok: false, reason: `nested deeper than ${FRAME_MAX_DEPTH} levels` };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'not JSON' };
  }
  const validate = getValidator('tunnel-frame');
  if (!validate(value)) {
    const rawType = value && typeof value === 'object' ? (value as { type?: unknown }).type : undefined;
    const def = typeof rawType === 'string' ? FRAME_DEFS[rawType] : undefined;
    // Report the failure of the branch the frame claims to be (the others fail on `type`).
    const first = def ? validate.errors?.find((e) => e.schemaPath.startsWith(`#/$defs/${def}/`)) : undefined;
    const type = def ? `"${String(rawType)}" ` : '';
    return { ok: false, reason: `${type}frame does not match the protocol${first ? ` (${first.instancePath || '/'} ${first.message})` : def ? '' : ' (unknown type)'}` };
  }
  const frame = value as T;
  if (!accepted.includes(frame.type)) return { ok: false, reason: `unexpected "${frame.type}" frame` };
  return { ok: true, frame };
}

/**
 * Whether a frame this side built would pass the other side's check. The relay checks each
 * request before it forwards or queues it: a public request the client would refuse (too
 * many headers, a path too long) must be answered here, not become a frame that closes the
 * developer's connection on every redelivery.
 */
export function isValidFrame(frame: RelayToClientFrame | ClientToRelayFrame): boolean {
  return getValidator('tunnel-frame')(frame) === true;
}
