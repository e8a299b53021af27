/** An unexpected failure inside a route: a 500 with no detail for the caller, and a log line for the operator. */
import { afterAll, expect, it } from 'vitest';
import path from 'node:path';
import { openSqliteState } from '../../src/serve/state/sqlite-state.js';
import { cleanup, startTestServe, tempDir } from './helpers.js';

afterAll(() => cleanup());

it('answers 500 E_INTERNAL without the message, and logs the route and the error', async () => {
  const logged: string[] = [];
  const state = openSqliteState(path.join(tempDir(), 'serve.db'));
  // A bug inside a route (the database itself still answers ping).
  state.users.get = async () => {
    throw new Error('boom: /srv/secret/path');
  };
  const s = await startTestServe({ state, log: (message, fields) => logged.push(`${message} ${JSON.stringify(fields)}`) });
  try {
    const r = await fetch(`${s.url}/v1/users/u1`, { headers: { authorization: `Bearer ${s.admin}` } });
    expect(r.status).toBe(500);
    const text = await r.text();
    expect(JSON.parse(text).error.code).toBe('E_INTERNAL');
    expect(text).not.toContain('boom');
    expect(logged).toContainEqual(expect.stringMatching(/^internal error .*GET \/v1\/users\/:userId.*boom/));
  } finally {
    await s.close();
  }
});

it('a version or integration name the store refuses is the caller\'s mistake (400), not an internal error', async () => {
  const logged: string[] = [];
  const state = openSqliteState(path.join(tempDir(), 'serve.db'));
  // An ended execution to rerun (queued ones would be picked up by the runner).
  const at = new Date().toISOString();
  const record = { id: 'ex_0', workflow: 'shopify-sync/create-order', version: 'v1', userId: 'u1', event: {}, status: 'succeeded', createdAt: at, steps: {} };
  await state.executions.ingest({ executions: [{ id: 'ex_0', installationId: 'inst_0', userId: 'u1', integration: 'shopify-sync', version: 1, workflow: record.workflow, status: 'succeeded', record, createdAt: at, updatedAt: at } as never] });
  const s = await startTestServe({ state, log: (message, fields) => logged.push(`${message} ${JSON.stringify(fields)}`) });
  try {
    const post = (p: string, body: unknown) => fetch(`${s.url}${p}`, { method: 'POST', headers: { authorization: `Bearer ${s.admin}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    await post('/v1/users', { id: 'u1' });
    for (const [p, body] of [
      ['/v1/installations', { userId: 'u1', integration: 'shopify-sync', version: 1e300, credentials: {} }],
      ['/v1/installations', { userId: 'u1', integration: 'a'.repeat(70), version: 1, credentials: {} }],
      ['/v1/integrations/..%2f..%2fx/upgrade', {}],
      ['/v1/executions/ex_0/rerun', { version: 1e300 }],
    ] as const) {
      const r = await post(p, body);
      expect([p, r.status]).toEqual([p, 400]);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe('E_BAD_REQUEST');
    }
    expect(logged.filter((l) => l.startsWith('internal error'))).toEqual([]);
  } finally {
    await s.close();
  }
});

it('a damaged serve.db is a clear error naming the file and what to do, not "a bug in alloy"', async () => {
  const { writeFileSync } = await import('node:fs');
  const { openServe } = await import('../../src/serve/admin.js');
  const dir = tempDir();
  writeFileSync(path.join(dir, 'serve.db'), 'garbage, not a database');
  let err: { code?: string; message?: string; hint?: string } = {};
  try {
    await openServe({ dataDir: dir }, {});
  } catch (e) {
    err = e as typeof err;
  }
  expect(err.code).toBe('E_STATE_DAMAGED');
  expect(err.message).toContain(path.join(dir, 'serve.db'));
  expect(err.hint).toMatch(/backup/);
});
