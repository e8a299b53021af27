/**
 * A user's connection to an app, as the engine asks for it: the app-level fields from the
 * server's environment (the app's client secret, API version; the manifest's `env` names),
 * then the credential's account and sealed fields. An OAuth token that expires within a
 * minute is refreshed first, under a per-credential lock, so two executions never race a
 * rotating refresh token: the second one waits and reads what the first stored.
 */
import type { ConnectorManifest } from '../core/model.js';
import { connectionEnvName } from '../connectors/credentials.js';
import { appOAuthVariables } from '../core/connection-env.js';
import type { HttpClient } from '../connectors/types.js';
import { MissingSecretError } from '../errors.js';
import { open, seal, type Keyring } from './crypto.js';
import { oauthProviders, type AppOAuth } from './oauth.js';
import type { CredentialRecord, ServeState } from './state/types.js';

export interface CredentialSecret {
  /** Connection fields (accessToken, apiKey, …). */
  fields: Record<string, string>;
  refreshToken?: string;
}

export interface Connections {
  resolve(manifest: ConnectorManifest, credentialId: string | undefined, userId: string): Promise<Record<string, string>>;
  /** The app's OAuth client settings, or undefined when the server has none for it. */
  appOAuth(app: string): AppOAuth | undefined;
  /** Refresh now (exposed for tests); returns the stored credential. */
  refresh(credentialId: string): Promise<CredentialRecord>;
}

const REFRESH_MARGIN_MS = 60_000;

export function openCredential(keyring: Keyring, c: CredentialRecord): CredentialSecret {
  return open<CredentialSecret>(keyring, c.secret, `credential:${c.id}`);
}

export function sealCredential(keyring: Keyring, id: string, secret: CredentialSecret) {
  return seal(keyring, secret, `credential:${id}`);
}

export function createConnections(options: {
  state: ServeState;
  keyring: Keyring;
  env: Record<string, string | undefined>;
  settings: Record<string, { baseUrl?: string; scopes?: string }>;
  http: HttpClient;
  now: () => number;
}): Connections {
  const locks = new Map<string, Promise<unknown>>();
  const withLock = async <T>(key: string, fn: () => Promise<T>): Promise<T> => {
    const prev = locks.get(key) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const settled = next.catch(() => undefined);
    locks.set(key, settled);
    try {
      return await next;
    } finally {
      if (locks.get(key) === settled) locks.delete(key);
    }
  };

  const appOAuth = (app: string): AppOAuth | undefined => {
    const names = appOAuthVariables(app);
    const first = (list: string[]) => list.map((n) => options.env[n]).find((v) => v !== undefined);
    const clientId = first(names.clientId);
    const clientSecret = first(names.clientSecret);
    if (!clientId || !clientSecret) return undefined;
    const s = options.settings[app] ?? {};
    return { clientId, clientSecret, scopes: s.scopes ?? options.env[names.scopes] ?? 'write_orders,read_orders', ...(s.baseUrl ? { baseUrl: s.baseUrl } : {}) };
  };

  const refresh = (credentialId: string) =>
    withLock(credentialId, async () => {
      const c = await options.state.credentials.get(credentialId);
      if (!c) throw new MissingSecretError('the credential was deleted', 'Connect the app again.');
      // Another execution may have refreshed it while this one waited for the lock.
      if (!needsRefresh(c, options.now())) return c;
      const secret = openCredential(options.keyring, c);
      const provider = oauthProviders[c.app];
      const app = appOAuth(c.app);
      if (!provider || !app || !secret.refreshToken || !c.account) throw new MissingSecretError(`the ${c.app} token of this credential expired and cannot be refreshed`, 'Connect the app again (POST /v1/oauth/:app/start).');
      const t = await provider.refresh(options.http, app, { account: c.account, refreshToken: secret.refreshToken });
      const next: CredentialRecord = {
        ...c,
        secret: sealCredential(options.keyring, c.id, { fields: { ...secret.fields, accessToken: t.accessToken }, refreshToken: t.refreshToken ?? secret.refreshToken }),
        ...(t.expiresIn ? { expiresAt: new Date(options.now() + t.expiresIn * 1000).toISOString() } : {}),
        updatedAt: new Date(options.now()).toISOString(),
      };
      await options.state.credentials.put(next);
      return next;
    });

  return {
    appOAuth,
    refresh,
    async resolve(manifest, credentialId, userId) {
      const values: Record<string, string> = {};
      for (const [field, spec] of Object.entries(manifest.connection ?? {})) {
        const v = options.env[connectionEnvName(manifest, field)] ?? spec.default;
        if (v) values[field] = v;
      }
      if (!manifest.connection || Object.keys(manifest.connection).length === 0) return values;
      if (!credentialId) throw new MissingSecretError(`this installation has no ${manifest.name} credential`, `Connect ${manifest.name} for the user and update the installation's credentials.`);
      let c = await options.state.credentials.get(credentialId);
      if (!c || c.userId !== userId) throw new MissingSecretError(`the ${manifest.name} credential of this installation is gone`, 'Connect the app again and update the installation.');
      if (needsRefresh(c, options.now())) c = await refresh(c.id);
      const secret = openCredential(options.keyring, c);
      if (c.account) values.shop = c.account;
      Object.assign(values, secret.fields);
      return values;
    },
  };
}

function needsRefresh(c: CredentialRecord, now: number): boolean {
  return !!c.expiresAt && Date.parse(c.expiresAt) - now < REFRESH_MARGIN_MS;
}
