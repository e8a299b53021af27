import { useEffect, useState } from 'preact/hooks';
import type { Api, UserInfo } from './api.js';
import { time } from './format.js';
import { Alert, TableHead } from './parts.js';

/** `alloy serve`, API keys only: the customer's end users, 50 at a time. */
export function UsersView({ api }: { api: Api }) {
  const [users, setUsers] = useState<UserInfo[]>([]);
  const [cursor, setCursor] = useState<string | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [loading, setLoading] = useState(true);

  const load = (more?: string) =>
    api.listUsers(more).then(
      (p) => {
        setUsers((list) => (more ? [...list, ...p.users] : p.users));
        setCursor(p.nextCursor);
        setError(undefined);
        setLoading(false);
      },
      (err: Error) => {
        setError(err.message);
        setLoading(false);
      },
    );
  useEffect(() => {
    void load();
  }, [api]);

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
        <button type="button" class="more" onClick={() => void load(cursor)}>
          Load more users
        </button>
      )}
    </section>
  );
}
