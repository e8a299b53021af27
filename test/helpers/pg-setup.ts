/**
 * Vitest global setup: probes the test PostgreSQL once per run and tells every test file
 * (inject('pg')), so a run without a server prints one line instead of one per file.
 */
import pg from 'pg';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    pg: { url: string; available: boolean; reason?: string };
  }
}

export const DEFAULT_TEST_PG_URL = 'postgres://postgres@127.0.0.1:5432/test';

export default async function setup(project: TestProject): Promise<void> {
  const url = process.env.ALLOY_TEST_PG_URL || DEFAULT_TEST_PG_URL;
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  let reason: string | undefined;
  try {
    await client.connect();
    await client.query('SELECT 1');
  } catch (err) {
    reason = (err as Error).message || String(err);
  } finally {
    await client.end().catch(() => {});
  }
  if (reason && process.env.ALLOY_TEST_REQUIRE_PG !== '1') {
    console.warn(`PostgreSQL tests skipped: no server at ${url} (${reason}); start one or set ALLOY_TEST_PG_URL=postgres://user@host:port/db to run them`);
  }
  project.provide('pg', { url, available: !reason, ...(reason ? { reason } : {}) });
}
