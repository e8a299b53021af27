/**
 * `alloy dev`'s GET /v1/stream: a client that stops reading has its stream ended once
 * MAX_STREAM_BUFFER_BYTES wait for it, instead of every later event buffered in memory.
 */
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { expect, it } from 'vitest';
import { createSseParser } from '../../src/net/sse.js';
import { createEventStream } from '../../src/server/event-stream.js';
import type { EventLog } from '../../src/server/event-log.js';
import { MAX_STREAM_BUFFER_BYTES } from '../../src/http/respond.js';
import { waitFor } from './helpers.js';

it('ends the stream of a client that stops reading instead of buffering its events without bound', async () => {
  const log = { isClosed: false, readLog: () => [] } as unknown as EventLog;
  const stream = createEventStream(log);
  let response: http.ServerResponse | undefined;
  const server = http.createServer((req, res) => {
    response = res;
    stream.subscribe(req, res, undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const socket = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
  try {
    socket.write('GET /v1/stream HTTP/1.1\r\nHost: x\r\n\r\n');
    socket.pause(); // never reads: the kernel's buffers fill, then Node's
    await waitFor(() => stream.size === 1, 'the subscriber');
    const big = { workflow: 'w'.repeat(100_000) };
    let most = 0;
    // 64 MB offered in all; without the bound every byte of it waits in memory.
    for (let i = 0; i < 640 && stream.size > 0; i++) {
      stream.publish('execution', big);
      most = Math.max(most, response?.writableLength ?? 0);
      if (i % 20 === 0) await new Promise((r) => setImmediate(r));
    }
    expect(stream.size).toBe(0);
    expect(most).toBeLessThan(MAX_STREAM_BUFFER_BYTES + 200_000);
    expect(response?.destroyed).toBe(true);
  } finally {
    socket.destroy();
    stream.close();
    server.close();
  }
});

it('a client that reads gets a log backlog far over the bound in full (a reconnect with Last-Event-ID)', async () => {
  // 3,000 entries of ~2 KB: 6 MB, one and a half times MAX_STREAM_BUFFER_BYTES.
  const entries = Array.from({ length: 3000 }, (_, i) => ({ seq: i + 1, time: 0, kind: 'note', message: 'm'.repeat(2000) }));
  const log = {
    isClosed: false,
    readLog: (after: number | undefined, limit: number) => entries.filter((e) => e.seq > (after ?? 0)).slice(0, limit),
  } as unknown as EventLog;
  expect(entries.length * 2000).toBeGreaterThan(MAX_STREAM_BUFFER_BYTES);
  const stream = createEventStream(log);
  const server = http.createServer((req, res) => stream.subscribe(req, res, 0));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const controller = new AbortController();
  try {
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/stream`, { signal: controller.signal });
    let last = 0;
    let count = 0;
    const parse = createSseParser((m) => {
      if (m.event !== 'log') return;
      count++;
      last = Number(m.id);
    });
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    while (last < 3000) {
      const { value, done } = await reader.read();
      if (done) break;
      parse(value);
    }
    expect(count).toBe(3000);
    expect(last).toBe(3000);
    expect(stream.size).toBe(1);
  } finally {
    controller.abort();
    stream.close();
    server.close();
  }
});
