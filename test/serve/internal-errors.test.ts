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
