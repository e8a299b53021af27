/**
 * PostgreSQL for tests: the server from ALLOY_TEST_PG_URL (default
 * postgres://postgres@127.0.0.1:5432/test), probed once by pg-setup.ts. `describePg` runs its
 * tests when the server answers and skips them otherwise, unless ALLOY_TEST_REQUIRE_PG=1
 * (CI sets it in .ci/run): then they run and fail. Each test gets schemas of its own, named
 * with a random suffix, and `dropSchemas` removes exactly those.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { describe, inject } from 'vitest';

const probe = inject('pg');
export const PG_URL = probe.url;
export const PG_REQUIRED = process.env.ALLOY_TEST_REQUIRE_PG === '1';

/** `describe` when PostgreSQL is reachable or required, `describe.skip` otherwise. */
export const describePg: typeof describe = probe.available || PG_REQUIRED ? describe : (describe.skip as typeof describe);

/** Throws the probe's error when PostgreSQL is required but was not reachable. */
export function assertPgReachable(): void {
  if (!probe.available) throw new Error(`ALLOY_TEST_REQUIRE_PG=1 but PostgreSQL at ${PG_URL} did not answer: ${probe.reason}`);
}

const created: string[] = [];

/** A fresh schema name (not created: the state creates it), remembered for dropSchemas. */
export function freshSchema(prefix = 't'): string {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  created.push(name);
  return name;
}

/** Drops the schemas this file named (only those), with everything in them. */
export async function dropSchemas(): Promise<void> {
  const names = created.splice(0);
  if (!names.length || !probe.available) return;
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    for (const n of names) await client.query(`DROP SCHEMA IF EXISTS ${n} CASCADE`);
  } finally {
    await client.end();
  }
}
