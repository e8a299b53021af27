/**
 * The developer's side of the relay: one WebSocket to `alloy relay`, kept alive.
 *
 * - Heartbeats: a ping every `heartbeatMs`; no pong within `heartbeatTimeoutMs` means the
 *   connection is dead (a laptop that slept, a NAT that forgot us) and it is dropped.
 * - Reconnects with exponential backoff and jitter, saying so through the logger
 *   ("tunnel lost, reconnecting in 2s" / "tunnel restored").
 * - Each relayed request is checked again (ingress paths only), forwarded to the local
 *   ingress listener with undici, and the answer sent back. A queued delivery is only
 *   acknowledged once the local server took it: if it could not be reached, or answered
 *   5xx, 408 or 429 (e.g. 503 while reloading), the relay is told (nack), keeps the request
 *   and redelivers it later. The app was answered 202 long ago: nobody else would retry.
 */
import { EventEmitter } from 'node:events';
import { WebSocket } from 'ws';
import { AlloyError } from '../errors.js';
import { checkIngressTarget } from './ingress-paths.js';
import { forwardToLocal } from './local-forward.js';
import {
  CLOSE_REPLACED,
  RELAY_CONNECT_PATH,
  TUNNEL_NAME_HEADER,
  CLOSE_BAD_FRAME,
  decodeFrame,
  isRetryableStatus,
  type ClientToRelayFrame,
  type DropReport,
  type HelloFrame,
  type RelayToClientFrame,
  type RequestFrame,
} from './protocol.js';

const RELAY_FRAME_TYPES: readonly RelayToClientFrame['type'][] = ['hello', 'request'];

export interface TunnelLogger {
  info(msg: string): void;
  warn(msg: string): void;
}

export interface RelayClientOptions {
  /** ws(s)://host[:port][/prefix]; http(s) is accepted and converted. */
  relayUrl: string;
  token: string;
  /** Tunnel name to claim; must be the token's name. Default: the token's name. */
  name?: string;
  /** The local ingress listener, e.g. http://127.0.0.1:51234. */
  localUrl: string;
  logger: TunnelLogger;
  signal?: AbortSignal;
  heartbeatMs?: number;
  heartbeatTimeoutMs?: number;
  backoff?: { initialMs?: number; maxMs?: number };
  /** Jitter source (0..1); injectable so tests are deterministic. */
  random?: () => number;
  connectTimeoutMs?: number;
  /** How long the local server has to answer one request. */
  localTimeoutMs?: number;
}

export interface TunnelRequestEvent {
  method: string;
  path: string;
  status: number;
  queued: boolean;
  durationMs: number;
}

export interface RelayTunnel {
  /** `https://relay.example.com/t/<name>`; append ingress paths to it. */
  publicUrl: string;
  name: string;
  close(): Promise<void>;
  /** 'lost' (delayMs), 'restored', 'dropped' (DropReport), 'request' (TunnelRequestEvent), 'fatal' (AlloyError). */
  on(event: 'lost' | 'restored' | 'dropped' | 'request' | 'fatal', fn: (arg: any) => void): void;
}

/** Where the client opens its WebSocket: the relay URL with the connect path. */
export function relayConnectUrl(relayUrl: string): string {
  let url: URL;
  try {
    url = new URL(relayUrl);
  } catch {
    throw badRelayUrl(relayUrl);
  }
  if (url.protocol === 'https:') url.protocol = 'wss:';
  else if (url.protocol === 'http:') url.protocol = 'ws:';
  if (url.protocol !== 'wss:' && url.protocol !== 'ws:') throw badRelayUrl(relayUrl);
  const prefix = url.pathname.replace(/\/+$/, '');
  url.pathname = prefix.endsWith(RELAY_CONNECT_PATH) ? prefix : `${prefix}${RELAY_CONNECT_PATH}`;
  url.search = '';
  url.hash = '';
  return url.toString();
}

function badRelayUrl(relayUrl: string): AlloyError {
  return new AlloyError('E_TUNNEL_URL', `"${relayUrl}" is not a relay URL`, {
    exitCode: 2,
    hint: 'Pass --tunnel-url wss://relay.example.com (the host running `alloy relay`).',
  });
}

/** Exponential backoff with jitter: the wait for attempt n (0-based) lies in [d/2, d]. */
export function backoffDelay(attempt: number, initialMs: number, maxMs: number, random: () => number): number {
  const d = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(d / 2 + (random() * d) / 2);
}

export function connectRelay(options: RelayClientOptions): Promise<RelayTunnel> {
  const client = new RelayClient(options);
  return client.start();
}

class RelayClient {
  private readonly events = new EventEmitter();
  private readonly connectUrl: string;
  private ws?: WebSocket;
  private closed = false;
  private attempt = 0;
  private lost = false;
  private reconnectTimer?: NodeJS.Timeout;
  private pingTimer?: NodeJS.Timeout;
  private pongTimer?: NodeJS.Timeout;
  private publicUrl = '';
  private name = '';
  private readonly heartbeatMs: number;
  private readonly heartbeatTimeoutMs: number;
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly random: () => number;

  constructor(private readonly options: RelayClientOptions) {
    this.connectUrl = relayConnectUrl(options.relayUrl);
    this.heartbeatMs = options.heartbeatMs ?? 15_000;
    this.heartbeatTimeoutMs = options.heartbeatTimeoutMs ?? 10_000;
    this.initialMs = options.backoff?.initialMs ?? 500;
    this.maxMs = options.backoff?.maxMs ?? 30_000;
    this.random = options.random ?? Math.random;
    // Nobody may be listening for 'fatal' yet; never let it throw.
    this.events.on('error', () => {});
  }

  async start(): Promise<RelayTunnel> {
    if (this.options.signal?.aborted) throw new AlloyError('E_ABORTED', 'tunnel start was cancelled');
    this.options.signal?.addEventListener('abort', () => void this.close(), { once: true });
    await new Promise<void>((resolve, reject) => this.open({ resolve, reject }));
    return {
      publicUrl: this.publicUrl,
      name: this.name,
      close: () => this.close(),
      on: (event, fn) => void this.events.on(event, fn),
    };
  }

  /** Open one connection; `first` settles the start() promise on the first attempt. */
  private open(first?: { resolve: () => void; reject: (err: Error) => void }): void {
    if (this.closed) return;
    let refused: { status: number } | undefined;
    let helloSeen = false;
    const headers: Record<string, string> = { authorization: `Bearer ${this.options.token}` };
    if (this.options.name) headers[TUNNEL_NAME_HEADER] = this.options.name;
    const ws = new WebSocket(this.connectUrl, {
      headers,
      handshakeTimeout: this.options.connectTimeoutMs ?? 10_000,
      maxPayload: 64 * 1024 * 1024,
    });
    this.ws = ws;

    ws.on('unexpected-response', (_req, res) => {
      refused = { status: res.statusCode ?? 0 };
      res.resume();
      ws.terminate();
    });
    ws.on('open', () => this.startHeartbeat(ws));
    ws.on('pong', () => {
      clearTimeout(this.pongTimer);
      this.pongTimer = undefined;
    });
    ws.on('message', (data) => {
      const decoded = decodeFrame<RelayToClientFrame>(data, RELAY_FRAME_TYPES);
      if (!decoded.ok) {
        // A relay that breaks the protocol gets nothing from us: close (1008) and reconnect later.
        this.options.logger.warn(`tunnel: the relay sent a bad frame (${decoded.reason}); closing the connection (1008)`);
        ws.close(CLOSE_BAD_FRAME, 'bad frame');
        setTimeout(() => ws.terminate(), 1_000).unref();
        return;
      }
      const frame = decoded.frame;
      if (frame.type === 'hello') {
        helloSeen = true;
        this.onHello(ws, frame);
        first?.resolve();
        first = undefined;
      } else if (frame.type === 'request') {
        this.onRequest(ws, frame).catch((err: unknown) => this.options.logger.warn(`tunnel: relaying a request failed: ${(err as Error).message}`));
      }
    });
    ws.on('error', () => {
      // 'close' follows and decides what to do.
    });
    ws.on('close', (code, reasonBuf) => {
      this.stopHeartbeat();
      if (this.ws === ws) this.ws = undefined;
      if (this.closed) {
        first?.reject(new AlloyError('E_ABORTED', 'tunnel closed before it connected'));
        return;
      }
      if (refused && [401, 403, 404].includes(refused.status)) {
        const err = this.refusalError(refused.status);
        if (first) first.reject(err);
        else this.fatal(err);
        return;
      }
      if (code === CLOSE_REPLACED) {
        this.fatal(
          new AlloyError('E_TUNNEL_REPLACED', `another connection took over tunnel "${this.name}"`, {
            hint: 'Only one `alloy dev` can hold a tunnel name; stop the other one or pass a different --tunnel-name.',
          }),
        );
        return;
      }
      if (first) {
        const why = refused ? `HTTP ${refused.status}` : helloSeen ? `closed (${code})` : 'unreachable';
        first.reject(
          new AlloyError('E_TUNNEL_CONNECT', `could not connect to the relay at ${this.options.relayUrl} (${why})`, {
            hint: 'Check that `alloy relay` is running there and that --tunnel-url is its address (wss://host).',
            details: { reason: reasonBuf.toString() || undefined },
          }),
        );
        return;
      }
      this.scheduleReconnect(helloSeen);
    });
  }

  private refusalError(status: number): AlloyError {
    if (status === 404) {
      return new AlloyError('E_TUNNEL_CONNECT', `${this.options.relayUrl} is not an alloy relay (no connect endpoint)`, {
        hint: 'Point --tunnel-url at the host running `alloy relay`, e.g. wss://relay.example.com.',
      });
    }
    return new AlloyError(
      'E_TUNNEL_AUTH',
      status === 403
        ? `the relay token does not belong to tunnel name "${this.options.name}"`
        : 'the relay refused the token (401)',
      {
        hint:
          status === 403
            ? 'Use the tunnel name the token was issued for (--tunnel-name), or ask for a token for this name.'
            : 'Set ALLOY_RELAY_TOKEN to the token listed for your name in the relay\'s ALLOY_RELAY_TOKENS.',
      },
    );
  }

  private fatal(err: AlloyError): void {
    this.options.logger.warn(`tunnel stopped: ${err.message}${err.hint ? ` (${err.hint})` : ''}`);
    this.closed = true;
    this.events.emit('fatal', err);
  }

  private onHello(ws: WebSocket, hello: HelloFrame): void {
    this.publicUrl = hello.publicUrl;
    this.name = hello.name;
    this.attempt = 0;
    if (this.lost) {
      this.lost = false;
      this.options.logger.info(`tunnel restored (${hello.publicUrl})`);
      this.events.emit('restored', { publicUrl: hello.publicUrl });
    }
    if (hello.queued > 0) {
      this.options.logger.info(`tunnel: the relay kept ${hello.queued} request(s) while you were away; delivering them in order`);
    }
    const dropped: Required<DropReport> = {
      overflow: Number(hello.dropped?.overflow) || 0,
      expired: Number(hello.dropped?.expired) || 0,
      unreadable: Number(hello.dropped?.unreadable) || 0,
    };
    if (dropped.overflow > 0 || dropped.expired > 0 || dropped.unreadable > 0) {
      const parts = [];
      if (dropped.overflow > 0) parts.push(`${dropped.overflow} refused because its queue was full (the sender got 507 and may retry)`);
      if (dropped.expired > 0) parts.push(`${dropped.expired} expired before you reconnected`);
      if (dropped.unreadable > 0) parts.push(`${dropped.unreadable} unreadable on the relay's disk (kept there as .bad files for inspection)`);
      this.options.logger.warn(`tunnel: while you were offline the relay dropped ${parts.join(' and ')}`);
      this.events.emit('dropped', dropped);
    }
    this.send(ws, { type: 'hello-ack', dropped });
  }

  private async onRequest(ws: WebSocket, frame: RequestFrame): Promise<void> {
    const started = Date.now();
    const queued = frame.queued === true;
    const target = typeof frame.path === 'string' ? checkIngressTarget(frame.path) : undefined;
    let status: number;
    if (!target || frame.method !== 'POST') {
      // Defence in depth: the relay filters too, but never expose more than ingress.
      status = 404;
      const body = Buffer.from(JSON.stringify({ error: { code: 'E_NOT_FOUND', message: 'not an ingress route' } }));
      this.send(ws, { type: 'response', id: frame.id, status, headers: [['content-type', 'application/json']], body: body.toString('base64') });
    } else {
      try {
        const res = await forwardToLocal(
          this.options.localUrl,
          {
            method: 'POST',
            path: target.pathname + target.search,
            headers: [...(Array.isArray(frame.headers) ? frame.headers : []), ...(queued ? ([['x-alloy-relay-queued', '1']] as [string, string][]) : [])],
            body: Buffer.from(typeof frame.body === 'string' ? frame.body : '', 'base64'),
          },
          { timeoutMs: this.options.localTimeoutMs },
        );
        status = res.status;
        if (queued && isRetryableStatus(res.status)) {
          // The app was answered 202 when this was queued: a 503 from a reloading dev server
          // must not delete it. Not acknowledged: the relay keeps it and tries again.
          this.options.logger.warn(`tunnel: the local server answered ${res.status} for queued ${target.pathname}; the relay keeps it and retries`);
          this.send(ws, { type: 'nack', id: frame.id, error: `the dev server answered ${res.status}` });
        } else {
          this.send(ws, { type: 'response', id: frame.id, status: res.status, headers: res.headers, body: res.body.toString('base64') });
        }
      } catch (err) {
        const message = (err as Error).message;
        this.options.logger.warn(`tunnel: could not reach the local server for ${target.pathname}: ${message}`);
        if (queued) {
          // Not acknowledged: the relay keeps it and tries again.
          status = 0;
          this.send(ws, { type: 'nack', id: frame.id, error: message });
        } else {
          status = 502;
          const body = Buffer.from(JSON.stringify({ error: { code: 'E_TUNNEL_LOCAL', message: 'the dev server did not answer' } }));
          this.send(ws, { type: 'response', id: frame.id, status, headers: [['content-type', 'application/json']], body: body.toString('base64') });
        }
      }
    }
    this.events.emit('request', { method: String(frame.method), path: String(frame.path), status, queued, durationMs: Date.now() - started } satisfies TunnelRequestEvent);
  }

  private send(ws: WebSocket, frame: ClientToRelayFrame): void {
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(frame));
  }

  private startHeartbeat(ws: WebSocket): void {
    this.stopHeartbeat();
    this.pingTimer = setInterval(() => {
      // One ping outstanding at a time: its timer must run out, not be reset by the next tick.
      if (ws.readyState !== WebSocket.OPEN || this.pongTimer) return;
      this.pongTimer = setTimeout(() => {
        this.pongTimer = undefined;
        this.options.logger.warn(`tunnel: no heartbeat answer from the relay in ${this.heartbeatTimeoutMs} ms`);
        ws.terminate();
      }, this.heartbeatTimeoutMs);
      ws.ping();
    }, this.heartbeatMs);
  }

  private stopHeartbeat(): void {
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
    this.pongTimer = undefined;
  }

  private scheduleReconnect(wasConnected: boolean): void {
    if (this.closed) return;
    const delay = backoffDelay(this.attempt, this.initialMs, this.maxMs, this.random);
    this.attempt += 1;
    const secs = delay < 1000 ? (delay / 1000).toFixed(1) : String(Math.round(delay / 1000));
    if (wasConnected || !this.lost) {
      this.lost = true;
      this.options.logger.warn(`tunnel lost, reconnecting in ${secs}s`);
    } else {
      this.options.logger.warn(`tunnel still down, reconnecting in ${secs}s`);
    }
    this.events.emit('lost', { delayMs: delay });
    this.reconnectTimer = setTimeout(() => this.open(), delay);
  }

  async close(): Promise<void> {
    if (this.closed && !this.ws) return;
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    this.stopHeartbeat();
    const ws = this.ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        ws.terminate();
        resolve();
      }, 1_000);
      ws.once('close', () => {
        clearTimeout(force);
        resolve();
      });
      if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
      else ws.close(1000, 'tunnel closed');
    });
  }
}
