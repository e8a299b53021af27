import { useEffect, useMemo, useState } from 'preact/hooks';
import { createApi } from './api.js';
import { createLive } from './live.js';
import { ExecutionsView } from './executions.js';
import { ExecutionView } from './execution.js';
import { WorkflowsView } from './workflows.js';

/** Hash routes: #/ (executions), #/executions/<id>, #/workflows. */
function useRoute(): string {
  const [hash, setHash] = useState(location.hash || '#/');
  useEffect(() => {
    const onChange = () => setHash(location.hash || '#/');
    addEventListener('hashchange', onChange);
    return () => removeEventListener('hashchange', onChange);
  }, []);
  return hash.slice(1);
}

export function App() {
  const api = useMemo(() => createApi(), []);
  const [connected, setConnected] = useState(false);
  const live = useMemo(() => createLive(api, setConnected), [api]);
  const route = useRoute();
  const m = /^\/executions\/([^/?]+)/.exec(route);
  const page = m ? 'execution' : route.startsWith('/workflows') ? 'workflows' : 'executions';
  useEffect(() => {
    document.title = page === 'execution' ? `${decodeURIComponent(m![1])} · alloy` : page === 'workflows' ? 'Workflows · alloy' : 'Executions · alloy';
  }, [route]);
  return (
    <>
      <header class="top">
        <a class="brand" href="#/">alloy dev</a>
        <nav aria-label="Main">
          <a href="#/" aria-current={page === 'executions' ? 'page' : undefined}>Executions</a>
          <a href="#/workflows" aria-current={page === 'workflows' ? 'page' : undefined}>Workflows</a>
        </nav>
        <span class={`live ${connected ? 'on' : 'off'}`} role="status" data-testid="live">
          {connected ? 'live' : 'connecting…'}
        </span>
      </header>
      <main id="main">
        {page === 'execution' && <ExecutionView key={m![1]} api={api} live={live} id={decodeURIComponent(m![1])} />}
        {page === 'workflows' && <WorkflowsView api={api} live={live} />}
        {page === 'executions' && <ExecutionsView api={api} live={live} />}
      </main>
    </>
  );
}
