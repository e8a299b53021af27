/**
 * `GET /v1/stream`: the runtime's live updates as server-sent events, for the web UI and
 * `alloy logs -f`. Events:
 *
 * - `execution`: an execution's summary, when it is accepted, replayed or finishes;
 * - `step`: `{executionId, workflow, step}` when a step finishes (the execution page);
 * - `log`: one event-log entry, with `id: <seq>`, so a client that reconnects with
 *   `Last-Event-ID` (or `?after=<seq>`) misses none;
 * - `definitions`: `{version, workflows}` after a hot reload swapped the definitions.
 *
 * Summaries and log entries are read only while someone listens: with no subscriber the
 * runtime does no extra work per execution.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { formatSse } from '../net/sse.js';
import { writeStream } from '../http/respond.js';
import type { EventLog, LogEntry } from './event-log.js';

/** A comment line this often keeps proxies and idle timers from closing the stream. */
export const SSE_HEARTBEAT_MS = 15_000;
const LOG_BATCH = 500;
/** Bytes waiting for a client before a log backlog pauses for 'drain' (well under MAX_STREAM_BUFFER_BYTES). */
const LOG_HIGH_WATER = 512 * 1024;

interface Subscriber {
  res: ServerResponse;
  /** Last log seq sent. */
  after: number;
  /** Waiting for the client to read what was sent before more of a backlog goes out. */
  draining?: boolean;
}

export interface EventStream {
  /** Takes over the response: headers now, events until the client or the runtime goes. */
  subscribe(req: IncomingMessage, res: ServerResponse, after: number | undefined): void;
  publish(event: string, data: unknown): void;
  /** New log entries may be committed: send them to every subscriber. */
  logChanged(): void;
  readonly size: number;
  close(): void;
}

export function createEventStream(log: EventLog): EventStream {
  const subscribers = new Set<Subscriber>();
  let heartbeat: NodeJS.Timeout | undefined;

  // A client that stopped reading has its stream ended: it reconnects with Last-Event-ID and
  // misses no log entry.
  const write = (sub: Subscriber, text: string): boolean => {
    if (writeStream(sub.res, text)) return true;
    drop(sub);
    return false;
  };
  // A backlog (a reconnect with Last-Event-ID after a long sleep) goes out as fast as the
  // client reads it: past LOG_HIGH_WATER waiting in memory the rest waits for 'drain', so a
  // reading client never reaches writeStream's bound however long the backlog.
  const sendLogs = (sub: Subscriber) => {
    if (log.isClosed || sub.draining) return;
    for (;;) {
      const entries: LogEntry[] = log.readLog(sub.after, LOG_BATCH);
      for (const e of entries) {
        if (!write(sub, formatSse({ event: 'log', id: e.seq, data: JSON.stringify(e) }))) return;
        sub.after = e.seq;
        if (sub.res.writableLength > LOG_HIGH_WATER) {
          sub.draining = true;
          sub.res.once('drain', () => {
            sub.draining = false;
            if (subscribers.has(sub)) sendLogs(sub);
          });
          return;
        }
      }
      if (entries.length < LOG_BATCH) return;
    }
  };
  const drop = (sub: Subscriber) => {
    subscribers.delete(sub);
    if (subscribers.size === 0 && heartbeat) {
      clearInterval(heartbeat);
      heartbeat = undefined;
    }
  };

  return {
    subscribe(req, res, after) {
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        'x-accel-buffering': 'no',
        connection: 'keep-alive',
      });
      // Start after the newest entry unless the client asks for what it missed.
      const start = after ?? log.readLog(undefined, 1)[0]?.seq ?? 0;
      const sub: Subscriber = { res, after: start };
      subscribers.add(sub);
      // `retry` tells EventSource-style clients how soon to reconnect.
      res.write(`retry: 1000\n: alloy runtime events\n\n`);
      if (after !== undefined) sendLogs(sub);
      const gone = () => drop(sub);
      req.on('close', gone);
      res.on('close', gone);
      if (!heartbeat) {
        heartbeat = setInterval(() => {
          for (const s of subscribers) write(s, ': ping\n\n');
        }, SSE_HEARTBEAT_MS);
        heartbeat.unref();
      }
    },
    publish(event, data) {
      if (subscribers.size === 0) return;
      const text = formatSse({ event, data: JSON.stringify(data) });
      for (const s of subscribers) write(s, text);
    },
    logChanged() {
      for (const s of subscribers) sendLogs(s);
    },
    get size() {
      return subscribers.size;
    },
    close() {
      for (const s of [...subscribers]) {
        s.res.end();
        drop(s);
      }
    },
  };
}
