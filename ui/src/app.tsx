import { useEffect, useMemo, useState } from 'preact/hooks';
import { createApi, type ApiError } from './api.js';
import { createLive } from './live.js';
import { ExecutionsView } from './executions.js';
import { ExecutionView } from './execution.js';
import { WorkflowsView } from './workflows.js';
import { InstallationsView } from './installations.js';
import { UsersView } from './users.js';
import { SignIn } from './signin.js';
import { loadSession, runtimeOfPage, saveSession, type Runtime, type Session } from './session.js';

/**
 * Hash routes: #/ (executions; `?userId=` / `?installationId=` filter them in serve),
 * #/executions/<id>, #/workflows (dev), #/installations and #/users (serve).
 */
function useRoute(): { path: string; params: URLSearchParams } {
  const [hash, setHash] = useState(location.hash || '#/');
  useEffect(() => {
    const onChange = () => setHash(location.hash || '#/');
    addEventListener('hashchange', onChange);
    return () => removeEventListener('hashchange', onChange);
  }, []);
  const [path, query = ''] = hash.slice(1).split('?');
  return { path, params: new URLSearchParams(query) };
}

const TITLES: Record<string, string> = { executions: 'Executions', workflows: 'Workflows', installations: 'Installations', users: 'Users' };

export function App() {
  const runtime = useMemo(runtimeOfPage, []);
  const [session, setSession] = useState<Session | undefined>(() => (runtime === 'serve' ? loadSession() : undefined));
  const [notice, setNotice] = useState<string | undefined>();
  if (runtime === 'serve' && !session) {
    return (
      <main id="main">
        <SignIn
          notice={notice}
          onSignedIn={(s) => {
            saveSession(s);
            setNotice(undefined);
            setSession(s);
          }}
        />
      </main>
    );
  }
  const signOut = (message?: string) => {
    saveSession(undefined);
    setNotice(message);
    setSession(undefined);
  };
  // A new session gets a new data layer and stream.
  return <Signed key={session?.token ?? 'dev'} runtime={runtime} session={session} signOut={signOut} />;
}

function Signed({ runtime, session, signOut }: { runtime: Runtime; session?: Session; signOut: (message?: string) => void }) {
  const [connected, setConnected] = useState(false);
  const api = useMemo(
    () =>
      createApi({
        runtime,
        token: session?.token,
        // The key was deleted or the token expired: back to the sign-in form, saying so.
        onUnauthorized: (e: ApiError) => signOut(`Signed out: the server refused the key or token (${e.message}). Sign in again.`),
      }),
    [],
  );
  const live = useMemo(() => createLive(api, setConnected), [api]);
  useEffect(() => () => live.close(), [live]);
  const { path, params } = useRoute();
  const m = /^\/executions\/([^/?]+)/.exec(path);
  const serve = runtime === 'serve';
  const page = m
    ? 'execution'
    : !serve && path.startsWith('/workflows')
      ? 'workflows'
      : serve && path.startsWith('/installations')
        ? 'installations'
        : serve && path.startsWith('/users') && session?.kind !== 'user'
          ? 'users'
          : 'executions';
  useEffect(() => {
    document.title = page === 'execution' ? `${decodeURIComponent(m![1])} · alloy` : `${TITLES[page]} · alloy`;
  }, [path, page]);
  const nav: [string, string][] = serve
    ? [['executions', '#/'], ['installations', '#/installations'], ...(session?.kind !== 'user' ? ([['users', '#/users']] as [string, string][]) : [])]
    : [['executions', '#/'], ['workflows', '#/workflows']];
  const userId = session?.kind === 'user' ? session.userId : (params.get('userId') ?? undefined);
  return (
    <>
      <header class="top">
        <a class="brand" href="#/">
          alloy {runtime}
        </a>
        <nav aria-label="Main">
          {nav.map(([p, href]) => (
            <a href={href} aria-current={page === p ? 'page' : undefined}>
              {TITLES[p]}
            </a>
          ))}
        </nav>
        <span class={`live ${connected ? 'on' : 'off'}`} role="status" data-testid="live">
          {connected ? 'live' : 'connecting…'}
        </span>
        {session && (
          <span class="who">
            <span data-testid="who">{session.kind === 'user' ? `user ${session.userId}` : `${session.kind} key`}</span>{' '}
            <button type="button" onClick={() => signOut()}>
              Sign out
            </button>
          </span>
        )}
      </header>
      <main id="main">
        {page === 'execution' && <ExecutionView key={m![1]} api={api} live={live} session={session} id={decodeURIComponent(m![1])} />}
        {page === 'workflows' && <WorkflowsView api={api} live={live} />}
        {page === 'installations' && session && <InstallationsView api={api} session={session} userId={userId} />}
        {page === 'users' && <UsersView api={api} />}
        {page === 'executions' && (
          <ExecutionsView key={`${params.get('userId') ?? ''}:${params.get('installationId') ?? ''}`} api={api} live={live} session={session} userId={session?.kind === 'user' ? undefined : (params.get('userId') ?? undefined)} installationId={params.get('installationId') ?? undefined} />
        )}
      </main>
    </>
  );
}
