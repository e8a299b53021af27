/**
 * Which runtime serves the page, and (in `alloy serve`) the key or token the page signs in
 * with. The token lives in sessionStorage: this tab only, gone when it closes, never sent by
 * the browser on its own (no cookie, so no cross-site request can use it); the data layer
 * adds it as `Authorization: Bearer` to each call. See docs/web-ui.md.
 */

export type Runtime = 'dev' | 'serve';

export function runtimeOfPage(): Runtime {
  return document.querySelector('meta[name="alloy-runtime"]')?.getAttribute('content') === 'serve' ? 'serve' : 'dev';
}

export interface Session {
  token: string;
  /** An API key's role, or `user` for an end-user token. */
  kind: 'admin' | 'read' | 'ingest' | 'user';
  /** For a user token: whose. */
  userId?: string;
}

const KEY = 'alloy.serve.session';

export function loadSession(): Session | undefined {
  try {
    const s = JSON.parse(sessionStorage.getItem(KEY) ?? 'null') as Session | null;
    return s && typeof s.token === 'string' ? s : undefined;
  } catch {
    return undefined;
  }
}

export function saveSession(s: Session | undefined): void {
  if (s) sessionStorage.setItem(KEY, JSON.stringify(s));
  else sessionStorage.removeItem(KEY);
}

/**
 * What a pasted credential is, before asking the server: an API key says its role
 * (`alk_<role>_…`); a user token is a JWT whose subject is the user. The server checks
 * either on every call; this only picks the views.
 */
export function describeToken(token: string): { kind: Session['kind']; userId?: string } | { error: string } {
  const key = /^alk_(admin|read|ingest)_/.exec(token);
  if (key) return { kind: key[1] as Session['kind'] };
  const parts = token.split('.');
  if (parts.length === 3) {
    try {
      const payload = JSON.parse(atob(parts[1].replace(/-/g, '+').replace(/_/g, '/'))) as { sub?: unknown };
      if (typeof payload.sub === 'string' && payload.sub) return { kind: 'user', userId: payload.sub };
    } catch {
      /* not a JWT */
    }
  }
  return { error: 'This is neither an API key (alk_…) nor a user token (from POST /v1/users/:id/token).' };
}
