/**
 * OAuth2 authorization code for app credentials. The flow is the runtime's
 * (`/v1/oauth/:app/start` stores a one-time state nonce, `/callback` checks it, exchanges the
 * code and keeps the token set sealed behind a one-time connect token, `/complete` stores it
 * for the user who started the flow); what differs per app is here, behind OAuthProvider.
 * Shopify's (shopify.dev/docs/apps/build/authentication-authorization/access-tokens/authorization-code-grant):
 * the authorize URL is on the shop's domain; the callback's query is signed with the app's
 * client secret (`hmac` = hex HMAC-SHA256 of the other parameters sorted by name, joined as
 * `k=v&…`), checked in constant time; the code is exchanged at `/admin/oauth/access_token`.
 * Expiring offline tokens come with a refresh token, renewed with grant_type=refresh_token.
 */
import { createHmac } from 'node:crypto';
import { safeEqual } from '../connectors/shopify/webhooks.js';
import type { HttpClient } from '../connectors/types.js';
import { UsageError } from '../errors.js';
import { HttpError } from '../http/error.js';

export interface TokenSet {
  accessToken: string;
  refreshToken?: string;
  /** Seconds until the access token expires. */
  expiresIn?: number;
  scope?: string;
}

export interface AppOAuth {
  clientId: string;
  clientSecret: string;
  scopes: string;
  /** Base URL override (a local fake); otherwise the account's own host. */
  baseUrl?: string;
}

export interface OAuthProvider {
  /** Checks the account named by the caller (Shopify: a shop domain) and normalizes it. */
  /** The account checked and normalised; `field` is where it came from (the start body's `account`, else the callback's `shop`). */
  account(value: string | undefined, field?: 'account'): string;
  authorizeUrl(app: AppOAuth, p: { account: string; redirectUri: string; state: string }): string;
  /** True when the callback's query is genuinely from the app. */
  verifyCallback(app: AppOAuth, query: URLSearchParams): boolean;
  exchange(http: HttpClient, app: AppOAuth, p: { account: string; code: string }): Promise<TokenSet>;
  refresh(http: HttpClient, app: AppOAuth, p: { account: string; refreshToken: string }): Promise<TokenSet>;
}

const SHOP_RE = /^[a-z0-9][a-z0-9-]*\.myshopify\.com$/;

function shopBase(app: AppOAuth, shop: string): string {
  return (app.baseUrl ?? `https://${shop}`).replace(/\/+$/, '');
}

export function shopifyCallbackHmac(query: URLSearchParams, secret: string): string {
  const pairs = [...query.entries()].filter(([k]) => k !== 'hmac' && k !== 'signature').sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return createHmac('sha256', secret).update(pairs.map(([k, v]) => `${k}=${v}`).join('&')).digest('hex');
}

async function tokenCall(http: HttpClient, url: string, body: Record<string, string>): Promise<TokenSet> {
  const res = await http({ method: 'POST', url, headers: { 'content-type': 'application/json', accept: 'application/json' }, body: JSON.stringify(body) });
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(res.text) as Record<string, unknown>;
  } catch {
    /* handled below */
  }
  if (res.status !== 200 || typeof json.access_token !== 'string') {
    throw new HttpError(502, 'E_OAUTH_EXCHANGE', `the app refused the token request (HTTP ${res.status})`, 'Check the app\'s client id and secret (SHOPIFY_API_KEY, SHOPIFY_API_SECRET) and start the connection again.');
  }
  return {
    accessToken: json.access_token,
    ...(typeof json.refresh_token === 'string' ? { refreshToken: json.refresh_token } : {}),
    ...(typeof json.expires_in === 'number' ? { expiresIn: json.expires_in } : {}),
    ...(typeof json.scope === 'string' ? { scope: json.scope } : {}),
  };
}

export const shopifyOAuth: OAuthProvider = {
  account(value, field) {
    const shop = (value ?? '').trim().toLowerCase();
    if (!SHOP_RE.test(shop) && field === 'account') throw new HttpError(400, 'E_BAD_REQUEST', '`account` must be a shop domain like acme.myshopify.com', 'Send "account": "<name>.myshopify.com".', { fields: [{ path: '/account', message: 'is not a shop domain' }] });
    if (!SHOP_RE.test(shop)) throw new HttpError(400, 'E_BAD_REQUEST', '`shop` must be a shop domain like acme.myshopify.com', 'Pass ?shop=<name>.myshopify.com.');
    return shop;
  },
  authorizeUrl(app, p) {
    const q = new URLSearchParams({ client_id: app.clientId, scope: app.scopes, redirect_uri: p.redirectUri, state: p.state, 'grant_options[]': '' });
    // With a base URL override (a local fake) the shop is not in the host: name it in the query.
    if (app.baseUrl) q.set('shop', p.account);
    return `${shopBase(app, p.account)}/admin/oauth/authorize?${q}`;
  },
  verifyCallback(app, query) {
    const given = query.get('hmac');
    return !!given && safeEqual(shopifyCallbackHmac(query, app.clientSecret), given);
  },
  exchange(http, app, p) {
    return tokenCall(http, `${shopBase(app, p.account)}/admin/oauth/access_token`, { client_id: app.clientId, client_secret: app.clientSecret, code: p.code, ...(app.baseUrl ? { shop: p.account } : {}) });
  },
  refresh(http, app, p) {
    return tokenCall(http, `${shopBase(app, p.account)}/admin/oauth/access_token`, { client_id: app.clientId, client_secret: app.clientSecret, grant_type: 'refresh_token', refresh_token: p.refreshToken, ...(app.baseUrl ? { shop: p.account } : {}) });
  },
};

// No prototype: `oauthProviders[name]` with a name from a URL (`__proto__`, `constructor`) finds nothing.
export const oauthProviders: Record<string, OAuthProvider> = Object.assign(Object.create(null) as Record<string, OAuthProvider>, { shopify: shopifyOAuth });

// ------------------------------------------------------------ where the browser goes after a flow

const isLoopbackHost = (host: string) => host === 'localhost' || host === '[::1]' || /^127(\.\d{1,3}){3}$/.test(host);

/** An origin a browser may be sent to with a connect token: https, or http on this machine (development). */
function safeOrigin(u: URL): boolean {
  return u.protocol === 'https:' || (u.protocol === 'http:' && isLoopbackHost(u.hostname));
}

/**
 * The operator's allowed `redirectAfter` origins (`serve.oauth.redirectOrigins`,
 * `--oauth-redirect-origins`, ALLOY_SERVE_OAUTH_REDIRECT_ORIGINS: comma-separated), each
 * normalised to `scheme://host[:port]`; undefined when none is configured.
 */
export function parseRedirectOrigins(value: string | readonly string[] | undefined, source: string): string[] | undefined {
  if (value === undefined) return undefined;
  // An empty variable or flag (a deployment template's placeholder) is unset: the config's list applies.
  if (typeof value === 'string' && value.trim() === '') return undefined;
  const items = (typeof value === 'string' ? value.split(',') : [...value]).map((v) => (typeof v === 'string' ? v.trim() : '')).filter(Boolean);
  // Given but naming nothing ("," or []) would silently mean "no list": said instead.
  if (!items.length) throw new UsageError(`${source} names no origin`, { hint: 'List origins, comma-separated, like https://app.example.com,https://admin.example.com, or leave the setting out.' });
  return items.map((item) => {
    let u: URL | undefined;
    try {
      u = new URL(item);
    } catch {
      /* below */
    }
    if (!u || !safeOrigin(u) || u.username || u.password || u.search || u.hash || (u.pathname !== '/' && u.pathname !== '')) {
      throw new UsageError(`${source}: "${item}" is not an https origin (or http on localhost)`, { hint: 'List origins only, comma-separated, like https://app.example.com,https://admin.example.com (no path).' });
    }
    return u.origin;
  });
}

/**
 * `--public-url` (ALLOY_SERVE_PUBLIC_URL): an http(s) URL with no user info, query or fragment,
 * returned without trailing slashes (a path prefix behind a proxy stays). It is the start of
 * every OAuth `redirect_uri`, which the app compares exactly with its allowed list: a trailing
 * slash made it `//v1/oauth/…` and any value was taken as it was. Undefined when not given.
 */
export function parsePublicUrl(value: string | undefined, source: string): string | undefined {
  if (value === undefined) return undefined;
  const text = String(value).trim();
  // Empty (a deployment template's placeholder) is unset, as for the redirect origins.
  if (text === '') return undefined;
  let u: URL | undefined;
  try {
    u = new URL(text);
  } catch {
    /* below */
  }
  if (!u || (u.protocol !== 'https:' && u.protocol !== 'http:') || u.username || u.password || u.search || u.hash || text.includes('?') || text.includes('#')) {
    throw new UsageError(`${source} ${JSON.stringify(text)} is not an http(s) URL without a query`, { hint: 'Give the URL apps reach this server at, like https://alloy.example.com (a path prefix behind a proxy is fine).' });
  }
  return `${u.origin}${u.pathname.replace(/\/+$/, '')}`;
}

/**
 * `redirectAfter` of an OAuth start, checked: an absolute https URL (http only on loopback),
 * without user info, whose origin is one of `allowed`. Without that list only a loopback page
 * may be named (development), whoever starts the flow: the connect token goes to this page, and
 * whoever receives it there completes the connection; a site of a user's choosing (directly, or
 * through a backend that passes a client's `returnTo` on) could complete a flow a victim shop's
 * admin approved (docs/security.md, OAuth). A path that a browser or a router may read as
 * another host (`//evil`, encoded slashes, backslashes) is refused too. 400 naming the field.
 */
export function checkRedirectAfter(value: string, allowed: readonly string[] | undefined): string {
  const bad = (why: string, hint: string) => new HttpError(400, 'E_BAD_REQUEST', `\`redirectAfter\` ${why}`, hint, { fields: [{ path: '/redirectAfter', message: why }] });
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw bad('is not an absolute URL', 'Send the https URL of your page that completes the connection.');
  }
  if (!safeOrigin(u)) throw bad('must be https (or http on localhost)', 'Send the https URL of your page that completes the connection.');
  if (u.username || u.password) throw bad('must not carry user info', 'Drop the user:password@ part.');
  // (The parser turns a backslash in the path into a slash, so the raw value is checked for one.)
  if (u.pathname.startsWith('//') || /%2f|%5c/i.test(u.pathname) || value.includes('\\')) throw bad('has a path that may be read as another host', 'Send a plain path, like https://app.example.com/connected.');
  if (allowed ? !allowed.includes(u.origin) : !isLoopbackHost(u.hostname)) {
    throw bad(
      'is not on an allowed origin',
      allowed ? 'Send a page of the origins this server allows (serve.oauth.redirectOrigins).' : "This server lists no serve.oauth.redirectOrigins, so only a localhost page may be named: set it to your product's origins.",
    );
  }
  return u.toString();
}
