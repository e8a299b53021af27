/**
 * `alloy dev`'s GET /v1/stream: a client that stops reading has its stream ended once
 * MAX_STREAM_BUFFER_BYTES wait for it, instead of every later event buffered in memory.
 */
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { expect, it } from 'vitest';
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
