/**
 * Closing the runtime while requests are in the middle of being answered (found in
 * review): an ingest whose delivery is being committed still gets its 202, a `?wait=`
 * long-poll is answered at once instead of outliving the database, and a malformed
 * percent-encoded path is a 400, not an internal error.
 */
import { describe, expect, it } from 'vitest';
import path from 'node:path';
import { openEventLog } from '../../src/server/event-log.js';
import { indexDefinitions } from '../../src/server/definitions.js';
import { createRuntimeServer, type RuntimeEvent } from '../../src/server/runtime-server.js';
import { fakeExecutor, http, postJson, projectOf, tempDir, workflow } from './helpers.js';

const workflows = [workflow('go', { event: 'go' }, [{ id: 'a', uses: 'transform', with: {} }]), workflow('open', { webhook: 'open' })];

describe('runtime shutdown and odd paths', () => {
  it('answers an ingest whose commit is in progress when close() is called', async () => {
    const tmp = tempDir();
    const file = path.join(tmp.dir, 'dev.sqlite');
    const log = openEventLog({ file });
    const append = log.appendDelivery.bind(log);
    let entered!: () => void;
    const inAppend = new Promise<void>((r) => (entered = r));
    // A slow disk: the commit is made, and its sync takes 150 ms.
    (log as any).appendDelivery = async (...args: unknown[]) => {
      entered();
      const result = await (append as any)(...args);
      await new Promise((r) => setTimeout(r, 150));
      return result;
    };
    const server = createRuntimeServer({ log, definitions: indexDefinitions(projectOf(tmp.dir, workflows)), executor: fakeExecutor().executor });
    const base = await server.listen();
    const sent = postJson(`${base}/v1/run/event`, { event: 'go', data: {} }).then(
      (r) => r.status,
      (e: { code?: string; message: string }) => `client error: ${e.code ?? e.message}`,
    );
    await inAppend;
    await server.close();
    expect(await sent).toBe(202);
    const again = openEventLog({ file, readonly: true });
    expect(again.countDeliveries()).toBe(1);
    again.close();
    tmp.cleanup();
  });

  it('ends a pending ?wait= at close, answering while the log is open, with no error afterwards', async () => {
    const tmp = tempDir();
    const events: RuntimeEvent[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const server = createRuntimeServer({
      log: openEventLog({ file: path.join(tmp.dir, 'dev.sqlite') }),
      definitions: indexDefinitions(projectOf(tmp.dir, workflows)),
      executor: fakeExecutor({ gate }).executor,
      shutdownGraceMs: 50,
      onEvent: (e) => events.push(e),
    });
    const base = await server.listen();
    const res = await postJson(`${base}/v1/run/event`, { event: 'go', data: {} });
    const id = res.json.executions[0].id;
    const waiting = http('GET', `${base}/v1/executions/${id}?wait=5000`);
    await new Promise((r) => setTimeout(r, 100));
    const started = Date.now();
    await server.close();
    const answer = await waiting;
    expect(answer.status).toBe(200);
    expect(answer.json.execution.id).toBe(id);
    expect(Date.now() - started).toBeLessThan(4000);
    release();
    await new Promise((r) => setTimeout(r, 200));
    expect(events.filter((e) => e.type === 'error')).toEqual([]);
    tmp.cleanup();
  });

  it('answers 400 for malformed percent-encoding in a path parameter', async () => {
    const tmp = tempDir();
    const events: RuntimeEvent[] = [];
    const server = createRuntimeServer({
      log: openEventLog({ file: path.join(tmp.dir, 'dev.sqlite') }),
      definitions: indexDefinitions(projectOf(tmp.dir, workflows)),
      executor: fakeExecutor().executor,
      onEvent: (e) => events.push(e),
    });
    const base = await server.listen();
    for (const [method, p] of [['POST', '/v1/webhooks/custom/%ZZ'], ['GET', '/v1/executions/%ZZ'], ['POST', '/v1/executions/%ZZ/replay']]) {
      const r = await http(method, `${base}${p}`, '{}', { 'content-type': 'application/json' });
      expect(r.status, p).toBe(400);
      expect(r.json.error.code).toBe('E_BAD_PATH');
    }
    expect(events.filter((e) => e.type === 'error')).toEqual([]);
    await server.close();
    tmp.cleanup();
  });
});

describe('clean restarts are not crashes', () => {
  it('an execution stopped by close() three times (a long delay across dev restarts) is resumed again, not failed E_CRASH_LOOP', async () => {
    const tmp = tempDir();
    const file = path.join(tmp.dir, 'dev.sqlite');
    const never = new Promise<void>(() => {});
    let id = '';
    for (let start = 0; start < 5; start++) {
      const { executor, calls } = fakeExecutor({ gate: never });
      const log = openEventLog({ file });
      const server = createRuntimeServer({ log, definitions: indexDefinitions(projectOf(tmp.dir, workflows)), executor, shutdownGraceMs: 20 });
      const base = await server.listen();
      if (start === 0) id = (await postJson(`${base}/v1/run/event`, { event: 'go', data: {} })).json.executions[0].id;
      for (let i = 0; i < 100 && calls.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(calls.length, `start ${start}: the execution runs (again)`).toBe(1);
      await server.close();
    }
    const again = openEventLog({ file, readonly: true });
    const row = again.getExecution(id);
    again.close();
    expect(row?.status).not.toBe('failed');
    expect((row?.record as { error?: { code?: string } }).error?.code).toBeUndefined();
    tmp.cleanup();
  });
});
