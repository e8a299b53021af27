/** The sign-in form's first look at a pasted credential (ui/src/session.ts): which views to show; the server still checks it. */
import { describe, expect, it } from 'vitest';
import { describeToken } from '../../ui/src/session.js';

const jwt = (payload: object) => `${Buffer.from('{"alg":"HS256"}').toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.sig`;

describe('describeToken', () => {
  it('reads an API key role from its prefix', () => {
    expect(describeToken('alk_admin_abc')).toEqual({ kind: 'admin' });
    expect(describeToken('alk_read_abc')).toEqual({ kind: 'read' });
    expect(describeToken('alk_ingest_abc')).toEqual({ kind: 'ingest' });
  });

  it("reads a user token's subject", () => {
    expect(describeToken(jwt({ sub: 'ann', aud: 'alloy-user' }))).toEqual({ kind: 'user', userId: 'ann' });
  });

  it('refuses anything else with a sentence saying what is expected', () => {
    for (const t of ['', 'hello', 'alk_root_x', jwt({ aud: 'x' }), 'a.b.c']) {
      expect(describeToken(t)).toEqual({ error: expect.stringContaining('neither an API key') });
    }
  });
});
