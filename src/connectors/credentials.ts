/**
 * Connection values for local runs. A workflow never holds secrets: each connector field
 * is read from an environment variable (the manifest's `env`, e.g. SHOPIFY_ACCESS_TOKEN).
 *
 * Precedence, highest first:
 *   1. `users/<userId>.env` in the project root (per-user credentials for multi-tenant tests)
 *   2. the process environment
 *   3. the project's `.env`
 *   4. the field's `default`
 * Files use dotenv syntax, parsed by node:util parseEnv (never executed).
 */
import path from 'node:path';
import { readEnvFile } from '../core/env-file.js';
import { MissingSecretError, UsageError } from '../errors.js';
import type { ConnectionField, ConnectorManifest } from '../core/model.js';
// Where a connection field's variable is named lives in core: the engine hides those variables from streams.
import { connectionEnvName } from '../core/connection-env.js';

export { connectionEnvName };

export interface ResolveConnectionOptions {
  manifest: ConnectorManifest;
  /**
   * The execution's user; selects `users/<userId>.env` when that file exists. Ids with
   * characters outside [A-Za-z0-9._@+-] (or containing "..") have no per-user file.
   */
  userId?: string;
  env: Record<string, string | undefined>;
  projectRoot: string;
}

/** Where a field's value came from (never the value itself). */
export type ConnectionSource = 'user-file' | 'env' | 'dotenv' | 'default';

export interface ResolvedConnection {
  values: Record<string, string>;
  sources: Record<string, ConnectionSource>;
}

const USER_ID = /^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$/;

/** True when a user id can name a file under users/ (no separators, no `..`). */
export function isFileSafeUserId(userId: string): boolean {
  return USER_ID.test(userId) && !userId.includes('..');
}

/** `users/<userId>.env`, refusing ids that could leave the folder. */
export function userEnvPath(projectRoot: string, userId: string): string {
  if (!isFileSafeUserId(userId)) {
    throw new UsageError(`user id "${userId}" cannot name a credentials file`, {
      code: 'E_USER_ID',
      hint: 'Use letters, digits, ".", "_", "-" or "@" (no slashes), e.g. --user acme-123.',
    });
  }
  return path.join(projectRoot, 'users', `${userId}.env`);
}


/** Resolves every connection field and where it came from; missing required ones → MissingSecretError. */
export async function resolveConnectionWithSources(options: ResolveConnectionOptions): Promise<ResolvedConnection> {
  const { manifest, userId, env, projectRoot } = options;
  const fields = Object.entries(manifest.connection ?? {}) as [string, ConnectionField][];
  const result: ResolvedConnection = { values: {}, sources: {} };
  if (fields.length === 0) return result;
  // An id that cannot name a file (e.g. "org/7") simply has no per-user file: never a path outside users/.
  const userFile = userId && isFileSafeUserId(userId) ? userEnvPath(projectRoot, userId) : undefined;
  const userValues = userFile ? await readEnvFile(userFile, path.relative(projectRoot, userFile)) : undefined;
  const dotenv = (await readEnvFile(path.join(projectRoot, '.env'), '.env')) ?? {};
  const missing: { field: string; variable: string }[] = [];
  for (const [field, spec] of fields) {
    const variable = connectionEnvName(manifest, field);
    const candidates: [ConnectionSource, string | undefined][] = [
      ['user-file', userValues?.[variable]],
      ['env', env[variable]],
      ['dotenv', dotenv[variable]],
      ['default', spec.default],
    ];
    const hit = candidates.find(([, v]) => v !== undefined && v !== '');
    if (hit) {
      result.values[field] = hit[1]!;
      result.sources[field] = hit[0];
    } else if (spec.required) {
      missing.push({ field, variable });
    }
  }
  if (missing.length > 0) {
    const names = missing.map((m) => m.variable);
    const where = userFile
      ? `${path.relative(projectRoot, userFile) || userFile} (user ${userId}) or .env`
      : '.env in the project root';
    throw new MissingSecretError(
      `${manifest.name} connection is missing ${missing.map((m) => `${m.field} (${m.variable})`).join(', ')}`,
      `Set ${names.join(', ')} in ${where}, or export ${names.length === 1 ? 'it' : 'them'} in the environment.`,
    );
  }
  return result;
}

/** The connection fields for a connector, as the engine passes them in ActionContext.connection. */
export async function resolveConnection(options: ResolveConnectionOptions): Promise<Record<string, string>> {
  return (await resolveConnectionWithSources(options)).values;
}

/** Values to redact from traces, logs and --json output: every non-empty `secret: true` field. */
export function secretValues(manifest: ConnectorManifest, connection: Record<string, string>): string[] {
  const out: string[] = [];
  for (const [field, spec] of Object.entries(manifest.connection ?? {})) {
    const value = connection[field];
    if (spec.secret && typeof value === 'string' && value !== '') out.push(value);
  }
  return out;
}
