/**
 * Opens the serve state the operator chose: SQLite in the data folder (the default, no
 * server needed), or PostgreSQL when a database URL is given (`--database`, config
 * `serve.database`, ALLOY_SERVE_DATABASE), shared by every serve process. The PostgreSQL
 * module (and `pg`) is imported only then.
 */
import path from 'node:path';
import { UsageError } from '../../errors.js';
import { checkDatabaseUrl } from './database-url.js';
import { openSqliteState } from './sqlite-state.js';
import type { ServeState } from './types.js';

export const STATE_FILE = 'serve.db';

export interface OpenServeStateOptions {
  /** The data folder (SQLite's database file lives here). */
  dataDir?: string;
  /** postgres://… : the state lives in PostgreSQL instead. */
  database?: string;
  /** PostgreSQL schema (default `alloy`). */
  schema?: string;
  /** PostgreSQL: apply missing migrations on open (default true). */
  migrate?: boolean;
  /** PostgreSQL: connections in this process's pool. */
  poolSize?: number;
  log?: (message: string, fields?: Record<string, unknown>) => void;
}

export async function openServeState(options: OpenServeStateOptions): Promise<ServeState> {
  if (options.database) {
    const { openPgState } = await import('./pg-state.js');
    return openPgState({
      url: checkDatabaseUrl(options.database),
      schema: options.schema,
      migrate: options.migrate,
      poolSize: options.poolSize,
      onPoolError: (err) => options.log?.('database connection lost (reconnecting on next use)', { error: err.message }),
    });
  }
  if (options.schema) throw new UsageError('--schema applies to PostgreSQL only', { hint: 'Give --database postgres://… too, or drop --schema.' });
  if (!options.dataDir) throw new UsageError('no data folder', { hint: 'Pass --data <dir> (where alloy serve keeps its database), or --database postgres://….' });
  return openSqliteState(path.join(options.dataDir, STATE_FILE));
}
