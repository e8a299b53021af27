/**
 * The self-hostable relay (`alloy relay`): a small public server that gives each developer a
 * stable webhook URL, `<public>/t/<name>/v1/webhooks/shopify`, and forwards what arrives
 * there over the developer's WebSocket to their `alloy dev`, then writes the dev server's
 * answer back to the app.
 *
 * - Only ingress paths are forwarded (POST /v1/run/event, POST /v1/webhooks/...); others 404.
 * - Developers authenticate with a bearer token bound to their name (relay-tokens.ts).
 * - Bodies are carried byte for byte (base64 in the frame): signatures still verify.
 * - Bodies over the limit get 413; a developer who does not answer in time, 504.
 * - While a developer is offline their requests wait on disk (relay-queue.ts) and the app
 *   gets 202; they are delivered in order on reconnect and deleted only once the dev server
 *   answered with a status that is not 5xx, 408 or 429 (those, and an unreachable dev
 *   server, mean "not taken": the request stays queued and is redelivered with backoff).
 *   Over the queue's bound the app gets 507 and the drop is logged and reported.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readBody } from '../http/body.js';
import { HttpError } from '../http/error.js';
import { listen, type Listening } from '../http/listen.js';
import { sendError, sendJson } from '../http/respond.js';
import { createRouter, type Route } from '../http/router.js';
import { randomUUID } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, WebSocket } from 'ws';
import { AlloyError } from '../errors.js';
import { lockFolder } from '../core/folder-lock.js';
import { checkIngressTarget, filterHeaderPairs, forwardableHeaders, isValidTunnelName } from './ingress-paths.js';
import {
  CLOSE_REPLACED,
  CLOSE_SHUTDOWN,
  RELAY_CONNECT_PATH,
  TUNNEL_NAME_HEADER,
  CLOSE_BAD_FRAME,
  decodeFrame,
  isRetryableStatus,
  isValidFrame,
  type ClientToRelayFrame,
  type HelloFrame,
  type NackFrame,
  type RequestFrame,
  type ResponseFrame,
} from './protocol.js';
import { DEFAULT_QUEUE_LIMITS, RelayQueue, type QueueLimits, type QueuedRequest } from './relay-queue.js';
import type { RelayTokens } from './relay-tokens.js';

export interface RelayLogger {
  info(msg: string): void;
  warn(msg: string): void;
}

export interface RelayServerOptions {
  /** Interface to bind; 127.0.0.1 unless told otherwise (put a TLS proxy in front). */
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Where the offline queue lives (`<dataDir>/queue/<name>/`). */
  dataDir: string;
  tokens: RelayTokens;
  /** Public base URL (`https://relay.example.com`); else derived from the connect request. */
  publicUrl?: string;
  /** Largest request body accepted (413 above). Default 5 MiB. */
  maxBodyBytes?: number;
  /** How long a connected developer has to answer (504 after). Default 30 s. */
  requestTimeoutMs?: number;
  /** Ping interval; a developer silent for two intervals is dropped. Default 15 s. */
  heartbeatMs?: number;
  /** First wait before redelivering a queued request the developer could not take. Default 1 s. */
  redeliverDelayMs?: number;
  queue?: Partial<QueueLimits>;
  logger?: RelayLogger;
  now?: () => number;
}

export interface RelayServer {
  /** http://host:port the relay listens on. */
  url: string;
  port: number;
  /** Names with a live developer connection. */
  connectedNames(): string[];
  /** Requests waiting on disk for a name. */
  pending(name: string): number;
  close(): Promise<void>;
}

/** Whether the dev server's answer to a queued request lets the relay delete it. */
function acknowledges(frame: ResponseFrame): boolean {
  // Older clients send `response` whatever the local status; a 503 from a dev server that is
  // reloading must not delete a request the app was already told (202) was taken.
  const status = Number(frame.status);
  return !(Number.isFinite(status) && isRetryableStatus(status));
}

type DeliveryResult = { kind: 'response'; frame: ResponseFrame } | { kind: 'nack'; frame: NackFrame } | { kind: 'closed' } | { kind: 'timeout' };

interface Connection {
  name: string;
  ws: WebSocket;
  alive: boolean;
  draining: boolean;
  inflight: Map<string, (result: DeliveryResult) => void>;
  /** Wakes a drain loop sleeping before a redelivery when the connection closes. */
  wake?: () => void;
}

const CLIENT_FRAME_TYPES: readonly ClientToRelayFrame['type'][] = ['hello-ack', 'response', 'nack'];
const DEFAULT_MAX_BODY = 5 * 1024 * 1024;
const MAX_RESPONSE_BODY = 10 * 1024 * 1024;
/** Node timers hold at most 2^31-1 ms; a longer delay fires after 1 ms (TimeoutOverflowWarning). */
export const MAX_TIMER_MS = 2 ** 31 - 1;
/** Longest wait between redelivery attempts (also after a queue read failure). */
const MAX_REDELIVER_DELAY_MS = 30_000;

function timerOption(value: number | undefined, fallback: number, what: string): number {
  const ms = value ?? fallback;
  if (!Number.isFinite(ms) || ms < 1 || ms > MAX_TIMER_MS) {
    throw new AlloyError('E_RELAY_OPTIONS', `${what} must be between 1 and ${MAX_TIMER_MS} ms, got ${String(value)}`, {
      exitCode: 2,
      hint: 'Node timers cannot wait longer than about 24.8 days; pick a shorter duration.',
    });
  }
  return ms;
}

/** The lock file of a relay's data folder (src/core/folder-lock.ts). */
export const RELAY_LOCK_FILE = 'relay.lock';

export async function startRelayServer(options: RelayServerOptions): Promise<RelayServer> {
  const logger = options.logger ?? { info: () => {}, warn: () => {} };
  const now = options.now ?? Date.now;
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY;
  const requestTimeoutMs = timerOption(options.requestTimeoutMs, 30_000, 'requestTimeoutMs');
  const heartbeatMs = timerOption(options.heartbeatMs, 15_000, 'heartbeatMs');
  const redeliverDelayMs = Math.min(timerOption(options.redeliverDelayMs, 1_000, 'redeliverDelayMs'), MAX_REDELIVER_DELAY_MS);
  const limits: QueueLimits = { ...DEFAULT_QUEUE_LIMITS, ...options.queue };
  const queueDir = `${options.dataDir}/queue`;
  let queue: RelayQueue;
  // One relay per data folder: a second one would deliver the same queued requests again.
  let unlock: () => void = () => {};
  try {
    // In the queue's folder, checked as it always was (the data folder the operator names may
    // be a link to a volume); the queue reads only the folders in it.
    unlock = await lockFolder(queueDir, RELAY_LOCK_FILE, () =>
      new AlloyError('E_RELAY_LOCKED', `another alloy relay is running on the data folder ${options.dataDir}`, { hint: 'Stop it first, or give this one another data folder.' }),
    );
    queue = await RelayQueue.open(queueDir, limits, {
      now,
      onExpired: (name, count) =>
        logger.warn(`relay: ${count} queued request(s) for "${name}" expired after ${Math.round(limits.maxAgeMs / 60_000)} min and were dropped`),
      onUnreadable: (name, badFile, reason) =>
        logger.warn(
          `relay: a queued request for "${name}" is unreadable (${reason}); moved aside to ${queueDir}/${name}/${badFile} ` +
            'for inspection and counted as dropped (the developer is told on their next connection)',
        ),
    });
  } catch (err) {
    unlock();
    if (err instanceof AlloyError && err.code === 'E_RELAY_LOCKED') throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new AlloyError('E_RELAY_DATA', `cannot use ${queueDir} for the relay's queue: ${code ?? (err as Error).message}`, {
      cause: err,
      hint: 'Point dataDir at a directory the relay can create and write.',
      details: { dataDir: options.dataDir, errno: code },
    });
  }
  const conns = new Map<string, Connection>();
  const handlers = new Set<Promise<void>>();
  let closing = false;

  const wss = new WebSocketServer({ noServer: true, maxPayload: Math.max(maxBodyBytes, MAX_RESPONSE_BODY) * 2 });

  // The kit's router: /healthz, and POST /t/* whose raw target the relay checks itself
  // (exactly, without the router's decoding) in handleHttp; any other method there is 405.
  const routes: Route[] = [
    { method: 'GET', path: '/healthz', handler: ({ res }) => sendJson(res, 200, { ok: true }) },
    {
      method: 'POST',
      path: '/t/*',
      handler: ({ req, res }) =>
        handleHttp(req, res).catch((err: unknown) => {
          if (!(err instanceof HttpError)) logger.warn(`relay: request failed: ${(err as Error).message}`);
          throw err; // answered by the router: HttpError as itself, anything else 500 E_INTERNAL
        }),
    },
  ];
  const route = createRouter(routes, {
    context: (base) => base,
    // Another method on an ingress path: the router's 405 (Allow: POST), the same for every
    // name; anything else: 404, whatever the method.
    fallback: async (req, res) => {
      if (ingressTarget(req.url)) return false;
      sendError(req, res, new HttpError(404, 'E_NOT_FOUND', 'no such tunnel route'));
      return true;
    },
  });
  /** Work a close waits for: requests being handled and queue writes they or frames started. */
  const track = (p: Promise<void>) => {
    handlers.add(p);
    void p.finally(() => handlers.delete(p));
  };
  const onRequest = (req: IncomingMessage, res: ServerResponse) => track(route(req, res));

  /** POST /t/<name>/<ingress path>. The method is judged first (by the router): a known and an unknown name answer alike (405 for both), so probing with GET cannot list the tunnel names. */
  async function handleHttp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const target = ingressTarget(req.url);
    if (!target || !isValidTunnelName(target.name) || !options.tokens.has(target.name)) throw new HttpError(404, 'E_NOT_FOUND', 'no such tunnel route');
    const { name, ingress } = target;
    // Over the limit: 413 E_BODY_TOO_LARGE, the connection closed after the answer (the kit's body reader).
    const body = await readBody(req, maxBodyBytes);
    const request: Omit<QueuedRequest, 'seq' | 'name'> = {
      id: randomUUID(),
      receivedAt: new Date(now()).toISOString(),
      method: 'POST',
      path: ingress.pathname + ingress.search,
      headers: forwardableHeaders(req.rawHeaders),
      body: body.toString('base64'),
    };
    if (!isValidFrame({ type: 'request', ...request, queued: false } satisfies RequestFrame)) {
      // 431 (RFC 6585 section 5): more or longer headers, or a longer path, than the protocol carries.
      sendJson(res, 431, { error: { code: 'E_RELAY_REQUEST', message: 'the request headers or path are too large to relay' } });
      return;
    }
    const conn = conns.get(name);
    // Anything already waiting goes first: a new request joins the queue behind it.
    if (!conn || queue.pending(name) > 0 || conn.ws.readyState !== WebSocket.OPEN) {
      await enqueueAndAnswer(name, request, res);
      return;
    }
    const result = await deliver(conn, { type: 'request', ...request, queued: false }, requestTimeoutMs);
    if (result.kind === 'response') {
      writeRelayedResponse(res, result.frame);
    } else if (result.kind === 'closed') {
      // The developer vanished mid-request: keep it for them rather than lose it.
      await enqueueAndAnswer(name, request, res);
    } else if (result.kind === 'timeout') {
      logger.warn(`relay: "${name}" did not answer ${request.path} within ${requestTimeoutMs} ms (504)`);
      sendJson(res, 504, { error: { code: 'E_RELAY_TIMEOUT', message: 'the developer did not answer in time' } });
    } else {
      sendJson(res, 502, { error: { code: 'E_RELAY_UPSTREAM', message: 'the developer could not reach their dev server' } });
    }
  }

  async function enqueueAndAnswer(name: string, request: Omit<QueuedRequest, 'seq' | 'name'>, res: ServerResponse): Promise<void> {
    let result: Awaited<ReturnType<RelayQueue['enqueue']>>;
    try {
      result = await queue.enqueue(name, request);
    } catch (err) {
      // Disk full or unwritable: refuse explicitly so the app keeps the delivery and retries.
      logger.warn(`relay: could not store ${request.path} for "${name}" (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); refused with 507`);
      res.setHeader('retry-after', '60');
      sendJson(res, 507, { error: { code: 'E_RELAY_QUEUE_WRITE', message: 'the relay could not store the request; retry later' } });
      return;
    }
    if (!result.ok) {
      const bound = result.reason === 'items' ? `${limits.maxItems} requests` : `${limits.maxBytes} bytes`;
      logger.warn(`relay: queue for "${name}" is full (${bound}); refused ${request.path} with 507, the sender keeps it`);
      // 507 Insufficient Storage (RFC 4918 11.5); Retry-After (RFC 9110 10.2.3) tells the app when to retry.
      res.setHeader('retry-after', '60');
      sendJson(res, 507, {
        error: { code: 'E_RELAY_QUEUE_FULL', message: `the relay queue for "${name}" is full (${bound}); retry later` },
      });
      return;
    }
    res.setHeader('x-alloy-relay', 'queued');
    sendJson(res, 202, { queued: true, id: result.item.id, name, position: queue.pending(name) });
    const conn = conns.get(name);
    if (conn) void drain(conn);
  }

  function deliver(conn: Connection, frame: RequestFrame, timeoutMs: number): Promise<DeliveryResult> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => finish({ kind: 'timeout' }), timeoutMs);
      const finish = (result: DeliveryResult): void => {
        clearTimeout(timer);
        if (conn.inflight.get(frame.id) === finish) conn.inflight.delete(frame.id);
        resolve(result);
      };
      conn.inflight.set(frame.id, finish);
      conn.ws.send(JSON.stringify(frame), (err) => {
        if (err) finish({ kind: 'closed' });
      });
    });
  }

  /**
   * Deliver the name's queue in order, one at a time, deleting each only once the dev server
   * took it (see acknowledges()). Every failure, including the queue itself failing, waits
   * with backoff before the next attempt: this loop must never spin.
   */
  async function drain(conn: Connection): Promise<void> {
    if (conn.draining) return;
    conn.draining = true;
    let delay = redeliverDelayMs;
    const current = (): boolean => !closing && conns.get(conn.name) === conn && conn.ws.readyState === WebSocket.OPEN;
    const backOff = async (): Promise<void> => {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, delay);
        conn.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      conn.wake = undefined;
      delay = Math.min(delay * 2, MAX_REDELIVER_DELAY_MS);
    };
    try {
      while (current()) {
        let item: QueuedRequest | undefined;
        try {
          item = await queue.peek(conn.name);
        } catch (err) {
          // A queue entry that cannot be read nor moved aside (disk trouble): it stays first
          // in line; try again later rather than at once.
          const code = (err as NodeJS.ErrnoException).code;
          logger.warn(`relay: delivering the queue for "${conn.name}" failed: ${code ? `${code} ` : ''}${(err as Error).message}; retrying in ${delay} ms`);
          await backOff();
          continue;
        }
        if (!item || !current()) break;
        const frame: RequestFrame = {
          type: 'request',
          id: item.id,
          method: item.method,
          path: item.path,
          headers: item.headers,
          body: item.body,
          queued: true,
          receivedAt: item.receivedAt,
        };
        const result = await deliver(conn, frame, requestTimeoutMs);
        if (result.kind === 'response' && acknowledges(result.frame)) {
          try {
            await queue.remove(conn.name, item.seq);
          } catch (err) {
            // Delivered but still on disk: it will be delivered again (at least once).
            logger.warn(`relay: could not delete delivered ${item.path} for "${conn.name}": ${(err as Error).message}; retrying in ${delay} ms`);
            await backOff();
            continue;
          }
          delay = redeliverDelayMs;
          continue;
        }
        if (result.kind === 'closed') break;
        const why =
          result.kind === 'nack' ? result.frame.error : result.kind === 'response' ? `the dev server answered ${result.frame.status}` : 'no answer in time';
        logger.warn(`relay: queued ${item.path} for "${conn.name}" not delivered (${why}); retrying in ${delay} ms`);
        await backOff();
      }
    } catch (err) {
      // Not expected (every await above is guarded), but never let it become a tight loop.
      logger.warn(`relay: delivering the queue for "${conn.name}" failed: ${(err as Error).message}`);
      conn.draining = false;
      if (current()) setTimeout(() => void drain(conn), delay).unref();
      return;
    } finally {
      conn.draining = false;
    }
    // Something may have been queued between the last peek and now.
    if (current() && queue.pending(conn.name) > 0) void drain(conn);
  }

  function handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // node's http server stops watching an upgraded socket's errors: a reset must not crash the relay.
    socket.on('error', () => socket.destroy());
    const path = (req.url ?? '').split('?')[0];
    if (closing || path !== RELAY_CONNECT_PATH) {
      rejectUpgrade(socket, 404, 'E_NOT_FOUND', 'no such endpoint');
      return;
    }
    const auth = req.headers.authorization ?? '';
    const token = /^Bearer\s+(\S+)$/i.exec(auth)?.[1];
    const name = token ? options.tokens.authenticate(token) : undefined;
    const where = req.socket.remoteAddress ?? 'unknown address';
    if (!name) {
      logger.warn(`relay: refused a connection with ${token ? 'an unknown' : 'no'} token from ${where}`);
      rejectUpgrade(socket, 401, 'E_RELAY_AUTH', 'unknown or missing relay token');
      return;
    }
    const asked = req.headers[TUNNEL_NAME_HEADER];
    if (typeof asked === 'string' && asked !== '' && asked !== name) {
      logger.warn(`relay: refused "${name}"'s token asking for tunnel "${asked}" from ${where}`);
      rejectUpgrade(socket, 403, 'E_RELAY_NAME', `this token belongs to another tunnel name, not "${asked}"`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, name, req));
  }

  function onConnection(ws: WebSocket, name: string, req: IncomingMessage): void {
    const previous = conns.get(name);
    if (previous) {
      // Newest wins: an old connection is most often a laptop that slept and has not noticed.
      logger.info(`relay: "${name}" connected again; closing the previous connection`);
      closeConnection(previous, CLOSE_REPLACED, 'replaced by a newer connection');
    }
    const conn: Connection = { name, ws, alive: true, draining: false, inflight: new Map() };
    conns.set(name, conn);
    ws.on('pong', () => (conn.alive = true));
    ws.on('message', (data) => {
      conn.alive = true;
      const decoded = decodeFrame<ClientToRelayFrame>(data, CLIENT_FRAME_TYPES);
      if (!decoded.ok) {
        // One bad frame ends that connection only (its in-flight requests are queued again).
        logger.warn(`relay: "${name}" sent a bad frame (${decoded.reason}); closing the connection (1008)`);
        closeConnection(conn, CLOSE_BAD_FRAME, 'bad frame');
        return;
      }
      const frame = decoded.frame;
      if (frame.type === 'response' || frame.type === 'nack') {
        conn.inflight.get(frame.id)?.(frame.type === 'response' ? { kind: 'response', frame } : { kind: 'nack', frame });
      } else {
        track(queue.acknowledgeDropped(name, frame.dropped).catch(() => {}));
      }
    });
    ws.on('close', () => onClosed(conn));
    ws.on('error', () => onClosed(conn));
    const base = (options.publicUrl ?? derivePublicBase(req)).replace(/\/+$/, '');
    const hello: HelloFrame = {
      type: 'hello',
      name,
      publicUrl: `${base}/t/${name}`,
      queued: queue.pending(name),
      dropped: queue.dropped(name),
    };
    ws.send(JSON.stringify(hello));
    logger.info(`relay: "${name}" connected${hello.queued ? `; delivering ${hello.queued} queued request(s)` : ''}`);
    void drain(conn);
  }

  function onClosed(conn: Connection): void {
    if (conns.get(conn.name) === conn) {
      conns.delete(conn.name);
      logger.info(`relay: "${conn.name}" disconnected; queueing their requests`);
    }
    for (const finish of [...conn.inflight.values()]) finish({ kind: 'closed' });
    conn.wake?.();
  }

  function closeConnection(conn: Connection, code: number, reason: string): void {
    onClosed(conn);
    try {
      conn.ws.close(code, reason);
    } catch {
      conn.ws.terminate();
    }
    setTimeout(() => conn.ws.terminate(), 1_000).unref();
  }

  const heartbeat = setInterval(() => {
    for (const conn of conns.values()) {
      if (!conn.alive) {
        logger.warn(`relay: "${conn.name}" stopped answering heartbeats; dropping the connection`);
        onClosed(conn);
        conn.ws.terminate();
        continue;
      }
      conn.alive = false;
      conn.ws.ping();
    }
  }, heartbeatMs);
  heartbeat.unref();

  const listenHost = options.host ?? '127.0.0.1';
  const listenPort = options.port ?? 0;
  let listening: Listening;
  try {
    // Slow-loris guard: the whole request must arrive within this time (node's own timer).
    // More header lines than the protocol carries (512) must still be seen, to answer 431 below.
    listening = await listen(onRequest, {
      host: listenHost,
      port: listenPort,
      requestTimeoutMs: Math.max(requestTimeoutMs, 10_000),
      maxHeadersCount: 1024,
      onConnectionsFull: ({ maxConnections, refused }) => logger.warn(`relay: ${refused} connection(s) refused: ${maxConnections} already open`),
    });
  } catch (err) {
    clearInterval(heartbeat);
    wss.close();
    unlock();
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'EADDRINUSE'
        ? 'the port is already in use'
        : code === 'EACCES'
          ? 'permission denied (ports below 1024 need privileges)'
          : code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND'
            ? 'that address is not on this machine'
            : (code ?? (err as Error).message);
    throw new AlloyError('E_RELAY_LISTEN', `cannot listen on ${listenHost}:${listenPort}: ${why}`, {
      cause: err,
      hint: 'Pick another port (or stop what holds this one), or another host to bind.',
      details: { host: listenHost, port: listenPort, errno: code },
    });
  }
  const server = listening.server;
  server.headersTimeout = 10_000;
  server.on('upgrade', (req, socket, head) => handleUpgrade(req, socket, head));

  return {
    url: listening.url,
    port: (server.address() as AddressInfo).port,
    connectedNames: () => [...conns.keys()],
    pending: (name) => queue.pending(name),
    async close() {
      if (closing) return;
      closing = true;
      clearInterval(heartbeat);
      // Closing developer connections turns their in-flight requests into queued ones.
      for (const conn of [...conns.values()]) closeConnection(conn, CLOSE_SHUTDOWN, 'relay shutting down');
      const closed = listening.close();
      await Promise.allSettled([...handlers]);
      server.closeAllConnections();
      await closed;
      for (const ws of wss.clients) ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      // A drop acknowledgement that arrived meanwhile finishes its write before close resolves.
      await Promise.allSettled([...handlers]);
      unlock();
    },
  };
}

/** `/t/<name>/<ingress path>`, checked exactly on the raw target (no decoding or normalising). */
function ingressTarget(url: string | undefined): { name: string; ingress: NonNullable<ReturnType<typeof checkIngressTarget>> } | undefined {
  const m = /^\/t\/([^/?#]+)(\/[^#]*)$/.exec(url ?? '/');
  const ingress = m ? checkIngressTarget(m[2]) : undefined;
  return m && m[1] && ingress ? { name: m[1], ingress } : undefined;
}

function derivePublicBase(req: IncomingMessage): string {
  const proto = String(req.headers['x-forwarded-proto'] ?? '').split(',')[0].trim() || 'http';
  const host = String(req.headers['x-forwarded-host'] ?? req.headers.host ?? 'localhost').split(',')[0].trim();
  return `${proto === 'https' ? 'https' : 'http'}://${host}`;
}

function writeRelayedResponse(res: ServerResponse, frame: ResponseFrame): void {
  const status = Number(frame.status);
  if (!Number.isInteger(status) || status < 200 || status > 599) {
    sendJson(res, 502, { error: { code: 'E_RELAY_UPSTREAM', message: 'the developer sent an invalid answer' } });
    return;
  }
  const body = Buffer.from(typeof frame.body === 'string' ? frame.body : '', 'base64');
  const headers = filterHeaderPairs(frame.headers);
  for (const [name, value] of headers) res.appendHeader(name, value);
  res.setHeader('content-length', body.length);
  res.writeHead(status);
  res.end(body);
}

function rejectUpgrade(socket: Duplex, status: number, code: string, message: string): void {
  const body = JSON.stringify({ error: { code, message } });
  const reason = status === 401 ? 'Unauthorized' : status === 403 ? 'Forbidden' : 'Not Found';
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}
