import { useState } from 'preact/hooks';
import type { Api, InstallationInfo } from './api.js';
import { time } from './format.js';
import { Alert, TableHead, usePagedList } from './parts.js';
import type { Session } from './session.js';

/**
 * `alloy serve`: installations (an integration at a version for one user) with their status;
 * upgrade to a version (blank: the published one; the server checks the config against the
 * new version first), activate, deactivate. A user token sees and changes only its own.
 */
export function InstallationsView({ api, session, userId }: { api: Api; session: Session; userId?: string }) {
  const { rows, setRows, cursor, error, loading, more } = usePagedList(
    (c) => api.listInstallations({ userId, cursor: c }).then((p) => ({ rows: p.installations, nextCursor: p.nextCursor })),
    [api, userId],
  );
  const [results, setResults] = useState<Record<string, { message: string; failed?: boolean }>>({});
  const canChange = session.kind === 'admin' || session.kind === 'user';

  const replace = (i: InstallationInfo) => setRows((list) => list.map((r) => (r.id === i.id ? i : r)));
  const act = async (id: string, what: () => Promise<InstallationInfo>, done: (i: InstallationInfo) => string) => {
    try {
      const i = await what();
      replace(i);
      setResults((r) => ({ ...r, [id]: { message: done(i) } }));
    } catch (err) {
      setResults((r) => ({ ...r, [id]: { message: (err as Error).message, failed: true } }));
    }
  };
  const upgrade = (i: InstallationInfo) => (e: Event) => {
    e.preventDefault();
    const raw = (new FormData(e.currentTarget as HTMLFormElement).get('version') as string).trim();
    const version = raw === '' ? undefined : Number(raw);
    if (version !== undefined && (!Number.isInteger(version) || version < 1)) {
      setResults((r) => ({ ...r, [i.id]: { message: 'A version is a whole number from 1, or blank for the published one.', failed: true } }));
      return;
    }
    void act(i.id, () => api.upgradeInstallation(i.id, version), (n) => `now on v${n.version}`);
  };

  return (
    <section aria-labelledby="installations-title">
      <h1 id="installations-title">Installations{userId ? ` of ${userId}` : ''}</h1>
      {userId && session.kind !== 'user' && (
        <p>
          <a href="#/installations">All installations</a>
        </p>
      )}
      <Alert message={error} />
      <table data-testid="installations">
        <caption class="sr-only">Installations</caption>
        <TableHead columns={['Installation', 'User', 'Integration', 'Version', 'Status', 'Updated', ...(canChange ? ['Change'] : [])]} />
        <tbody>
          {rows.map((i) => (
            <tr key={i.id} data-id={i.id} data-status={i.status} data-version={i.version}>
              <td>
                <a class="mono" href={`#/?installationId=${encodeURIComponent(i.id)}`} aria-label={`Executions of installation ${i.id}`}>
                  {i.id}
                </a>
              </td>
              <td class="mono">{i.userId}</td>
              <td>{i.integration}</td>
              <td class="mono">v{i.version}</td>
              <td>
                <span class={`status ${i.status === 'active' ? 'succeeded' : 'filtered'}`}>{i.status}</span>
              </td>
              <td>{time(i.updatedAt)}</td>
              {canChange && (
                <td>
                  <form class="inline" onSubmit={upgrade(i)}>
                    <label>
                      <span class="sr-only">Version for {i.id}</span>
                      <input name="version" inputMode="numeric" size={6} placeholder="published" aria-describedby={`result-${i.id}`} />
                    </label>
                    <button type="submit">Upgrade</button>
                    <button type="button" onClick={() => void act(i.id, () => api.setInstallationActive(i.id, i.status !== 'active'), (n) => n.status)}>
                      {i.status === 'active' ? 'Deactivate' : 'Activate'}
                    </button>
                  </form>
                  <span id={`result-${i.id}`} class={results[i.id]?.failed ? 'error' : 'dim'} role="status">
                    {results[i.id]?.message ?? ''}
                  </span>
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
      {!loading && rows.length === 0 && !error && <p class="empty">No installations{userId ? ` for ${userId}` : ''}.</p>}
      {cursor && (
        <button type="button" class="more" onClick={more}>
          Load more installations
        </button>
      )}
    </section>
  );
}
