/** PostgreSQL URLs as the serve commands take them (no `pg` import: used before choosing a backend). */
import { UsageError } from '../../errors.js';

export function isDatabaseUrl(s: string): boolean {
  return /^postgres(ql)?:\/\//i.test(s);
}

export function checkDatabaseUrl(url: string): string {
  if (!isDatabaseUrl(url)) throw new UsageError('--database takes a postgres:// URL', { hint: 'e.g. --database postgres://alloy@db.internal:5432/alloy (password in PGPASSWORD); without it, state stays in SQLite in the data folder.' });
  try {
    new URL(url);
  } catch {
    throw new UsageError('--database is not a valid URL', { hint: 'postgres://user@host:port/database' });
  }
  return url;
}

/** The URL with its password replaced, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable URL)';
  }
}
