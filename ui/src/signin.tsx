import { useState } from 'preact/hooks';
import { ApiError, createApi } from './api.js';
import { Alert } from './parts.js';
import { describeToken, type Session } from './session.js';

/**
 * `alloy serve`: sign in with an API key (admin or read) or an end-user token. The
 * credential is tried against the API before it is kept, so a wrong one is refused here.
 */
export function SignIn({ onSignedIn, notice }: { onSignedIn: (s: Session) => void; notice?: string }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);

  const submit = async (e: Event) => {
    e.preventDefault();
    const t = token.trim();
    const what = describeToken(t);
    if ('error' in what) {
      setError(what.error);
      return;
    }
    if (what.kind === 'ingest') {
      setError('An ingest key can only send events; sign in with an admin or read key, or a user token.');
      return;
    }
    setBusy(true);
    try {
      const api = createApi({ token: t, runtime: 'serve' });
      // One cheap call the credential must be allowed: its own user, or the first execution.
      if (what.kind === 'user') await api.getUser(what.userId!);
      else await api.listExecutions({ limit: 1 });
      onSignedIn({ token: t, ...what });
    } catch (err) {
      const e = err as ApiError;
      setError(e.status === 401 ? `This key or token was refused: ${e.message}. Check it, or ask for a new one (user tokens expire).` : e.message);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section class="signin" aria-labelledby="signin-title">
      <h1 id="signin-title">Sign in to alloy serve</h1>
      <p class="dim">
        Paste an API key (<code>alloy serve keys create --role admin</code>) or a user token (<code>POST /v1/users/:id/token</code>). It is kept in this tab only
        and sent with each request; closing the tab forgets it.
      </p>
      {notice && (
        <p class="error" role="status">
          {notice}
        </p>
      )}
      <form onSubmit={submit}>
        <label for="token">API key or user token</label>
        <input id="token" name="token" type="password" autocomplete="off" spellcheck={false} value={token} onInput={(e) => setToken((e.currentTarget as HTMLInputElement).value)} required />
        <Alert message={error} />
        <button type="submit" disabled={busy}>
          Sign in
        </button>
      </form>
    </section>
  );
}
