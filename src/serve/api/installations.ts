/**
 * Installations: an integration at a pinned version for one user, with a credential per app
 * and config values. New ones take the published version; upgrading checks the config
 * against the new version first; executions already created keep their version.
 */
import { HttpError } from '../../http/error.js';
import { newId } from '../../server/ids.js';
import { setOwn } from '../../core/own-key.js';
import { BadStoreInputError, StoreNotFoundError } from '../../store/lib.js';
import { checkConfig, maskConfig, openConfig, sealConfig } from '../config-values.js';
import type { IntegrationVersion } from '../definitions.js';
import type { InstallationRecord, InstallationStatus } from '../state/types.js';
import { ID_RE, notFound, obj, str, type ApiContext, type ApiRoute } from './context.js';

export async function installationView(c: ApiContext, i: InstallationRecord) {
  let def;
  try {
    def = (await c.deps.source.get(i.integration, i.version)).def;
  } catch {
    def = undefined;
  }
  return {
    id: i.id,
    userId: i.userId,
    integration: i.integration,
    version: i.version,
    status: i.status,
    credentials: i.credentials,
    config: maskConfig(def, openConfig(c.deps.keyring, i).values),
    createdAt: i.createdAt,
    updatedAt: i.updatedAt,
  };
}

async function versionOf(c: ApiContext, integration: string, version: unknown): Promise<IntegrationVersion> {
  let n: number | undefined;
  try {
    if (version === undefined || version === null || version === 'published') {
      n = await c.deps.source.published(integration);
      if (n === undefined) throw new HttpError(409, 'E_NOT_PUBLISHED', `${integration} has no published version`, `Run \`alloy publish ${integration}@<version>\`, or pass a version.`);
    } else if (typeof version === 'number' && Number.isSafeInteger(version) && version > 0) n = version;
    else throw new HttpError(400, 'E_BAD_REQUEST', '`version` must be a positive integer or "published"', undefined, { fields: [{ path: '/version', message: 'is not a version' }] });
    return await c.deps.source.get(integration, n);
  } catch (err) {
    if (err instanceof StoreNotFoundError) throw new HttpError(404, 'E_NOT_FOUND', `${integration} v${n} is not in the store`, 'Run `alloy versions` to see the released versions.');
    // A name or number the store refuses (too long, `..`): the caller's mistake, not a 500.
    if (err instanceof BadStoreInputError) throw new HttpError(400, 'E_BAD_REQUEST', err.message, err.hint);
    throw err;
  }
}

function configError(integration: string, version: number, violations: { path: string; message: string }[]): HttpError {
  return new HttpError(422, 'E_CONFIG_INVALID', `config values do not fit ${integration} v${version}: ${violations.map((v) => `${v.path || '/'} ${v.message}`).join('; ')}`, 'Fix the named config fields.', { fields: violations });
}

/** Credentials named for each app must exist and be the user's. */
async function checkCredentials(c: ApiContext, userId: string, creds: Record<string, unknown>): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [app, id] of Object.entries(creds)) {
    const cred = typeof id === 'string' && ID_RE.test(id) ? await c.deps.state.credentials.get(id) : undefined;
    if (!cred || cred.userId !== userId || cred.app !== app) throw new HttpError(422, 'E_CREDENTIAL', `credentials.${app} is not a ${app} credential of user ${userId}`, 'Create or connect one first (POST /v1/users/:userId/credentials or /v1/oauth/:app/start).', { fields: [{ path: `/credentials/${app}`, message: 'is not a credential of this user for this app' }] });
    out[app] = cred.id;
  }
  return out;
}

async function loadOwned(c: ApiContext): Promise<InstallationRecord> {
  const i = await c.deps.state.installations.get(c.params.installationId);
  if (!i) throw notFound('installation');
  c.own(i.userId, 'installation');
  return i;
}

/** Moves one installation to `target`, checking its config against the new version first. */
export async function upgradeInstallation(c: ApiContext, i: InstallationRecord, target: IntegrationVersion): Promise<InstallationRecord> {
  const current = openConfig(c.deps.keyring, i).values;
  const checked = checkConfig(target.def, current);
  if (checked.violations.length) throw configError(i.integration, target.version, checked.violations);
  const next: InstallationRecord = { ...i, version: target.version, config: sealConfig(c.deps.keyring, i.id, checked.values), updatedAt: c.iso() };
  await c.deps.state.installations.put(next);
  return next;
}

function setStatus(status: InstallationStatus): ApiRoute['handler'] {
  return async (c) => {
    const i = await loadOwned(c);
    const next = { ...i, status, updatedAt: c.iso() };
    await c.deps.state.installations.put(next);
    c.send(200, await installationView(c, next));
  };
}

export const installationRoutes: ApiRoute[] = [
  {
    method: 'POST',
    path: '/v1/installations',
    fields: ['userId', 'integration', 'version', 'credentials', 'config'],
    access: ['user'],
    async handler(c) {
      const body = await c.body();
      const userId = str(body, 'userId', { required: true })!;
      c.own(userId, 'user');
      const integration = str(body, 'integration', { required: true, pattern: /^[a-z0-9][a-z0-9-]*$/ })!;
      if (!(await c.deps.state.users.get(userId))) throw notFound('user');
      const target = await versionOf(c, integration, body.version);
      const credentials = await checkCredentials(c, userId, obj(body, 'credentials') ?? {});
      const checked = checkConfig(target.def, obj(body, 'config') ?? {});
      if (checked.violations.length) throw configError(integration, target.version, checked.violations);
      const id = newId('inst', c.deps.now());
      const now = c.iso();
      const rec: InstallationRecord = { id, userId, integration, version: target.version, status: 'active', credentials, config: sealConfig(c.deps.keyring, id, checked.values), createdAt: now, updatedAt: now };
      await c.deps.state.installations.put(rec);
      c.send(201, await installationView(c, rec));
    },
  },
  {
    method: 'GET',
    path: '/v1/installations',
    access: ['read', 'user'],
    async handler(c) {
      const status = c.query.get('status') ?? undefined;
      if (status !== undefined && status !== 'active' && status !== 'inactive') throw new HttpError(400, 'E_BAD_REQUEST', '`status` must be active or inactive');
      const userId = c.principal.kind === 'user' ? c.principal.userId : (c.query.get('userId') ?? undefined);
      if (c.principal.kind === 'user' && c.query.get('userId') && c.query.get('userId') !== userId) throw notFound('user');
      const p = await c.deps.state.installations.list({ userId, integration: c.query.get('integration') ?? undefined, status: status as InstallationStatus | undefined }, c.page());
      c.send(200, { items: await Promise.all(p.items.map((i) => installationView(c, i))), next: p.next ?? null });
    },
  },
  {
    method: 'GET',
    path: '/v1/installations/:installationId',
    access: ['read', 'user'],
    async handler(c) {
      c.send(200, await installationView(c, await loadOwned(c)));
    },
  },
  {
    method: 'PATCH',
    path: '/v1/installations/:installationId',
    fields: ['config', 'credentials'],
    access: ['user'],
    async handler(c) {
      const i = await loadOwned(c);
      const body = await c.body();
      const patch = obj(body, 'config');
      const creds = obj(body, 'credentials');
      const version = await c.deps.source.get(i.integration, i.version);
      const current = openConfig(c.deps.keyring, i).values;
      // Merge: a key set to null is removed (its default, if any, applies again).
      const merged: Record<string, unknown> = { ...current };
      for (const [k, v] of Object.entries(patch ?? {})) {
        if (v === null) delete merged[k];
        else setOwn(merged, k, v); // `__proto__` too, as an own key
      }
      const checked = checkConfig(version.def, merged);
      if (checked.violations.length) throw configError(i.integration, i.version, checked.violations);
      const credentials = creds ? { ...i.credentials, ...(await checkCredentials(c, i.userId, creds)) } : i.credentials;
      const next: InstallationRecord = { ...i, credentials, config: sealConfig(c.deps.keyring, i.id, checked.values), updatedAt: c.iso() };
      await c.deps.state.installations.put(next);
      c.send(200, await installationView(c, next));
    },
  },
  {
    method: 'POST',
    path: '/v1/installations/:installationId/upgrade',
    fields: ['version'],
    access: ['user'],
    async handler(c) {
      const i = await loadOwned(c);
      const body = await c.body();
      const target = await versionOf(c, i.integration, body.version);
      c.send(200, await installationView(c, await upgradeInstallation(c, i, target)));
    },
  },
  { method: 'POST', path: '/v1/installations/:installationId/activate', access: ['user'], handler: setStatus('active') },
  { method: 'POST', path: '/v1/installations/:installationId/deactivate', access: ['user'], handler: setStatus('inactive') },
  {
    method: 'DELETE',
    path: '/v1/installations/:installationId',
    access: ['user'],
    async handler(c) {
      const i = await loadOwned(c);
      await c.deps.state.installations.delete(i.id);
      c.send(200, { deleted: true });
    },
  },
  {
    // Upgrade every installation of an integration (or only one user's): each is checked on
    // its own; one whose config does not fit stays where it is and is reported.
    method: 'POST',
    path: '/v1/integrations/:integration/upgrade',
    fields: ['version', 'userId'],
    access: ['admin'],
    async handler(c) {
      const body = await c.body();
      const target = await versionOf(c, c.params.integration, body.version);
      const userId = str(body, 'userId');
      const upgraded: string[] = [];
      const failed: { id: string; code: string; message: string }[] = [];
      let after: string | undefined;
      do {
        const p = await c.deps.state.installations.list({ integration: c.params.integration, userId }, { limit: 200, after });
        for (const i of p.items) {
          if (i.version === target.version) continue;
          try {
            await upgradeInstallation(c, i, target);
            upgraded.push(i.id);
          } catch (err) {
            if (!(err instanceof HttpError)) throw err;
            failed.push({ id: i.id, code: err.code, message: err.message });
          }
        }
        after = p.next;
      } while (after);
      c.send(200, { version: target.version, upgraded, failed });
    },
  },
];
