/**
 * Credentials per user and app: created from key/token fields, or connected through OAuth2
 * (start → the app → callback → complete by the user who started it). Answers carry
 * metadata only, never a secret.
 */
import { createHash, randomBytes } from 'node:crypto';
import { HttpError } from '../../http/error.js';
import { newId } from '../../server/ids.js';
import { sealCredential } from '../connections.js';
import { open, seal } from '../crypto.js';
import { checkRedirectAfter, oauthProviders } from '../oauth.js';
import type { CredentialRecord } from '../state/types.js';
import { notFound, obj, str, type ApiRoute } from './context.js';

/** A started flow's state, and a pending connection (its connect token), live this long. */
const STATE_TTL_MS = 10 * 60_000;
/**
 * Flows a user may have open at once (started or waiting to be completed). Each start stores a
 * row for STATE_TTL_MS; without a bound, one user token in a loop fills the table.
 */
export const MAX_LIVE_FLOWS = 20;

/** The token set a callback leaves for its user, sealed in the pending row. */
interface PendingTokens {
  accessToken: string;
  refreshToken?: string;
}

/** The state row of a connect token: its SHA-256, so the database never holds the token itself. */
const connectKey = (token: string) => `connect:${createHash('sha256').update(token).digest('base64url')}`;
/** What a pending token set is sealed for: its row, and whose and which shop it is (a row moved to another user or shop does not open). */
const connectAad = (key: string, userId: string, app: string, account: string) => `oauth-connect:${key}:${userId}:${app}:${account}`;

export const credentialView = (c: CredentialRecord) => ({
  id: c.id,
  userId: c.userId,
  app: c.app,
  kind: c.kind,
  ...(c.account ? { account: c.account } : {}),
  ...(c.expiresAt ? { expiresAt: c.expiresAt } : {}),
  createdAt: c.createdAt,
  updatedAt: c.updatedAt,
});

export const credentialRoutes: ApiRoute[] = [
  {
    method: 'GET',
    path: '/v1/users/:userId/credentials',
    access: ['read', 'user'],
    async handler(c) {
      c.own(c.params.userId, 'user');
      if (!(await c.deps.state.users.get(c.params.userId))) throw notFound('user');
      c.send(200, { items: (await c.deps.state.credentials.listByUser(c.params.userId)).map(credentialView), next: null });
    },
  },
  {
    method: 'POST',
    path: '/v1/users/:userId/credentials',
    fields: ['app', 'kind', 'account', 'fields'],
    access: ['user'],
    async handler(c) {
      c.own(c.params.userId, 'user');
      const body = await c.body();
      const app = str(body, 'app', { required: true })!;
      const kind = str(body, 'kind', { required: true })!;
      if (kind !== 'key' && kind !== 'token') throw new HttpError(400, 'E_BAD_REQUEST', '`kind` must be key or token (use /v1/oauth/:app/start for oauth2)', undefined, { fields: [{ path: '/kind', message: 'must be key or token' }] });
      const runtime = c.deps.connectors.get(app);
      if (!runtime) throw new HttpError(400, 'E_BAD_REQUEST', `no connector "${app}"`, undefined, { fields: [{ path: '/app', message: 'is not a connector' }] });
      const fields = obj(body, 'fields') ?? {};
      const declared = runtime.manifest.connection ?? {};
      // Own keys only: `toString` and friends are `in` every object.
      const bad = Object.entries(fields).filter(([k, v]) => !Object.hasOwn(declared, k) || typeof v !== 'string').map(([k]) => ({ path: `/fields/${k}`, message: `is not a string connection field of ${app}` }));
      if (bad.length) throw new HttpError(400, 'E_BAD_REQUEST', 'some credential fields are not valid', Object.keys(declared).length ? `Fields of ${app}: ${Object.keys(declared).join(', ')}.` : `${app} takes no connection fields: send "fields": {}.`, { fields: bad });
      const account = str(body, 'account', { max: 255 });
      if (c.principal.kind === 'user') {
        // App webhooks are routed by account: a user naming another's shop would get that shop's
        // deliveries run, and readable, under their own installations. Only OAuth (the app signs
        // the shop) or the backend may vouch for an account.
        if (account) throw new HttpError(403, 'E_FORBIDDEN', 'a user token cannot name an `account`', `Connect the account through OAuth (POST /v1/oauth/${app}/start), or add the credential from your backend with an admin key.`);
        // Non-secret fields say where requests go (Shopify's `shop` is the host): a user could aim
        // this server at an internal address and read the answer in the execution record.
        const aimed = Object.keys(fields).filter((k) => !declared[k].secret).map((k) => ({ path: `/fields/${k}`, message: 'may be set by an admin key only' }));
        if (aimed.length) throw new HttpError(403, 'E_FORBIDDEN', 'a user token may set only the secret fields of a credential', `Secret fields of ${app}: ${Object.keys(declared).filter((k) => declared[k].secret).join(', ') || 'none'}; connect through OAuth, or add the credential from your backend with an admin key.`, { fields: aimed });
      }
      if (!(await c.deps.state.users.get(c.params.userId))) throw notFound('user');
      const id = newId('cred', c.deps.now());
      const now = c.iso();
      const rec: CredentialRecord = { id, userId: c.params.userId, app, kind, ...(account ? { account: account.toLowerCase() } : {}), secret: sealCredential(c.deps.keyring, id, { fields: fields as Record<string, string> }), createdAt: now, updatedAt: now };
      await c.deps.state.credentials.put(rec);
      c.send(201, credentialView(rec));
    },
  },
  {
    method: 'DELETE',
    path: '/v1/credentials/:credentialId',
    access: ['user'],
    async handler(c) {
      const cred = await c.deps.state.credentials.get(c.params.credentialId);
      if (!cred) throw notFound('credential');
      c.own(cred.userId, 'credential');
      await c.deps.state.credentials.delete(cred.id);
      c.send(200, { deleted: true });
    },
  },
  {
    method: 'POST',
    path: '/v1/oauth/:app/start',
    fields: ['userId', 'account', 'redirectAfter'],
    access: ['user'],
    async handler(c) {
      const body = await c.body();
      const userId = str(body, 'userId', { required: true })!;
      c.own(userId, 'user');
      const provider = oauthProviders[c.params.app];
      const app = c.deps.connections.appOAuth(c.params.app);
      if (!provider) throw new HttpError(404, 'E_NOT_FOUND', `no OAuth flow for ${c.params.app}`);
      if (!app) throw new HttpError(501, 'E_OAUTH_NOT_CONFIGURED', `the server has no OAuth client for ${c.params.app}`, `Start alloy serve with ${c.params.app.toUpperCase()}_API_KEY and ${c.params.app.toUpperCase()}_API_SECRET set.`);
      const user = await c.deps.state.users.get(userId);
      if (!user) throw notFound('user');
      const account = provider.account(str(body, 'account') ?? undefined, 'account');
      // Required: the callback only hands the browser a connect token for this page; the
      // user signed in there completes the connection (POST /v1/oauth/:app/complete).
      const redirectAfter = checkRedirectAfter(str(body, 'redirectAfter', { required: true, max: 2000 })!, c.deps.oauthRedirectOrigins);
      const nonce = randomBytes(24).toString('base64url');
      const expiresAt = new Date(c.deps.now() + STATE_TTL_MS).toISOString();
      if (!(await c.deps.state.oauthStates.put({ nonce, userId, userCreatedAt: user.createdAt, app: c.params.app, account, redirectAfter, expiresAt }, c.iso(), MAX_LIVE_FLOWS))) {
        throw new HttpError(429, 'E_TOO_MANY_FLOWS', `this user has ${MAX_LIVE_FLOWS} OAuth connections open`, `Complete one, or wait: an unfinished one expires ${STATE_TTL_MS / 60_000} minutes after it started.`);
      }
      const redirectUri = `${c.deps.publicUrl()}/v1/oauth/${encodeURIComponent(c.params.app)}/callback`;
      c.send(201, { authorizeUrl: provider.authorizeUrl(app, { account, redirectUri, state: nonce }), expiresAt });
    },
  },
  {
    // Public: the app's redirect carries no API key. Trust comes from the one-time state
    // nonce and the app's signature over the query (checked before anything is stored).
    // It does not connect anything by itself: whoever approved in the app (a shop's admin)
    // may not be the user who started the flow, so the token set waits, sealed, for that
    // user to complete it from the page the browser is sent to (docs/security.md, OAuth).
    method: 'GET',
    path: '/v1/oauth/:app/callback',
    access: 'public',
    async handler(c) {
      const provider = oauthProviders[c.params.app];
      const app = c.deps.connections.appOAuth(c.params.app);
      if (!provider || !app) throw new HttpError(404, 'E_NOT_FOUND', `no OAuth flow for ${c.params.app}`);
      if (!provider.verifyCallback(app, c.query)) throw new HttpError(401, 'E_OAUTH_SIGNATURE', 'the callback is not signed by the app', 'Start the connection again from your product.');
      const nonce = c.query.get('state') ?? '';
      const st = nonce ? await c.deps.state.oauthStates.take(nonce, c.iso()) : undefined;
      // A pending connection's row is no started flow; a state from before connect tokens has no redirectAfter.
      if (!st || st.app !== c.params.app || st.pending || !st.redirectAfter) throw new HttpError(400, 'E_OAUTH_STATE', 'unknown, used or expired state', 'Start the connection again (a state is good once, for 10 minutes).');
      const account = provider.account(c.query.get('shop') ?? undefined);
      if (st.account && st.account !== account) throw new HttpError(400, 'E_OAUTH_STATE', 'the callback is for another account than the one started', 'Start the connection again.');
      // Checked again here: a state started under an older rule or another list (an upgrade, a
      // changed serve.oauth.redirectOrigins) must not send a connect token where it now may not go.
      try {
        checkRedirectAfter(st.redirectAfter, c.deps.oauthRedirectOrigins);
      } catch {
        throw new HttpError(400, 'E_OAUTH_STATE', 'the state was started for a page this server no longer allows', 'Start the connection again.');
      }
      const code = c.query.get('code');
      if (!code) throw new HttpError(400, 'E_BAD_REQUEST', 'the callback has no code');
      const t = await provider.exchange(c.deps.http, app, { account, code });
      // The connect token goes to the browser; the state keeps only its hash, and the token set sealed.
      const connectToken = `alct_${randomBytes(32).toString('base64url')}`;
      const key = connectKey(connectToken);
      await c.deps.state.oauthStates.put(
        {
          nonce: key,
          userId: st.userId,
          ...(st.userCreatedAt ? { userCreatedAt: st.userCreatedAt } : {}),
          app: c.params.app,
          account,
          expiresAt: new Date(c.deps.now() + STATE_TTL_MS).toISOString(),
          pending: {
            secret: seal(c.deps.keyring, { accessToken: t.accessToken, ...(t.refreshToken ? { refreshToken: t.refreshToken } : {}) } satisfies PendingTokens, connectAad(key, st.userId, c.params.app, account)),
            ...(t.expiresIn ? { tokenExpiresAt: new Date(c.deps.now() + t.expiresIn * 1000).toISOString() } : {}),
          },
        },
        c.iso(),
      );
      const to = new URL(st.redirectAfter);
      to.searchParams.set('connectToken', connectToken);
      // The page gets the token in its query: it must not leak it onward in a Referer.
      c.send(302, {}, { location: to.toString(), 'referrer-policy': 'no-referrer' });
    },
  },
  {
    // Where the connection is made: by the user who started the flow (their token), or by the
    // backend naming that user (an admin key and `userId`). Anyone else gets 403 and the
    // pending connection stays for the right user; the right user takes it once.
    method: 'POST',
    path: '/v1/oauth/:app/complete',
    fields: ['connectToken', 'userId'],
    access: ['user'],
    async handler(c) {
      const body = await c.body();
      const named = str(body, 'userId');
      if (named) c.own(named, 'user');
      const connectToken = str(body, 'connectToken', { required: true, max: 200 })!;
      const caller = c.principal.kind === 'user' ? c.principal.userId : named;
      if (!caller) throw new HttpError(400, 'E_BAD_REQUEST', '`userId` is required with an admin key', 'Name the user signed in to your product, the one who started the connection.', { fields: [{ path: '/userId', message: 'is required' }] });
      const key = connectKey(connectToken);
      const gone = () => new HttpError(400, 'E_OAUTH_STATE', 'unknown, used or expired connect token', 'Start the connection again (a connect token is good once, for 10 minutes).');
      const seen = await c.deps.state.oauthStates.peek(key, c.iso());
      if (!seen?.pending || seen.app !== c.params.app || !seen.account) throw gone();
      // Not taken: a wrong user's attempt leaves the connection to the user who started it.
      if (seen.userId !== caller) {
        // An attempt at someone else's connection is worth an operator's look (never the token).
        c.deps.log('oauth complete refused: the connection was started by another user', { app: c.params.app, startedBy: seen.userId, caller });
        throw new HttpError(403, 'E_FORBIDDEN', 'this connection was started by another user', 'Only the user who started the connection may complete it; start it again signed in as yourself.');
      }
      const st = await c.deps.state.oauthStates.take(key, c.iso());
      if (!st?.pending || !st.account) throw gone();
      let tokens: PendingTokens;
      try {
        tokens = open<PendingTokens>(c.deps.keyring, st.pending.secret, connectAad(key, st.userId, c.params.app, st.account));
      } catch {
        // Sealed under a master key this process no longer has (rotated away): start again.
        throw gone();
      }
      const user = await c.deps.state.users.get(st.userId);
      if (!user) throw notFound('user');
      // Deleted and made again under the same id since the flow started: not the same user.
      if (st.userCreatedAt && user.createdAt !== st.userCreatedAt) throw gone();
      // One credential per (user, app, account): reconnecting replaces the token in place.
      const existing = (await c.deps.state.credentials.listByUser(st.userId)).find((x) => x.app === c.params.app && x.account === st.account);
      const id = existing?.id ?? newId('cred', c.deps.now());
      const now = c.iso();
      const rec: CredentialRecord = {
        id,
        userId: st.userId,
        app: c.params.app,
        kind: 'oauth2',
        account: st.account,
        ...(st.pending.tokenExpiresAt ? { expiresAt: st.pending.tokenExpiresAt } : {}),
        secret: sealCredential(c.deps.keyring, id, { fields: { accessToken: tokens.accessToken }, ...(tokens.refreshToken ? { refreshToken: tokens.refreshToken } : {}) }),
        createdAt: existing?.createdAt ?? now,
        updatedAt: now,
      };
      await c.deps.state.credentials.put(rec);
      c.send(201, { credential: credentialView(rec) });
    },
  },
];
