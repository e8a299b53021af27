import type { Api, UserInfo } from './api.js';
import { time } from './format.js';
import { Alert, TableHead, usePagedList } from './parts.js';

/** `alloy serve`, API keys only: the customer's end users, 50 at a time. */
export function UsersView({ api }: { api: Api }) {
  const { rows: users, cursor, error, loading, more } = usePagedList((c) => api.listUsers(c).then((p) => ({ rows: p.users, nextCursor: p.nextCursor })), [api]);

  return (
    <section aria-labelledby="users-title">
      <h1 id="users-title">Users</h1>
      <Alert message={error} />
      <table data-testid="users">
        <caption class="sr-only">End users</caption>
        <TableHead columns={['User', 'Name', 'Created', 'Shows']} />
        <tbody>
          {users.map((u) => (
            <tr key={u.id} data-id={u.id}>
              <td class="mono">{u.id}</td>
              <td>{u.name ?? ''}</td>
              <td>{time(u.createdAt)}</td>
              <td>
                <a href={`#/?userId=${encodeURIComponent(u.id)}`} aria-label={`Executions of ${u.id}`}>
                  Executions
                </a>{' '}
                ·{' '}
                <a href={`#/installations?userId=${encodeURIComponent(u.id)}`} aria-label={`Installations of ${u.id}`}>
                  Installations
                </a>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {!loading && users.length === 0 && !error && <p class="empty">No users yet. Create one with POST /v1/users or `alloy users create`.</p>}
      {cursor && (
        <button type="button" class="more" onClick={more}>
          Load more users
        </button>
      )}
    </section>
  );
}
