/**
 * Who is calling `alloy serve`:
 * - the customer's backend, with an API key (`alk_…`, created by `alloy serve keys create`)
 *   whose role is admin (everything), ingest (POST /v1/run/event and webhooks) or read (GETs).
 *   Only the key's sha256 is stored; a presented key is hashed, looked up, and the stored
 *   hash compared again in constant time.
 * - an end user, with a short-lived JWT from POST /v1/users/:id/token (HS256, jose), that
 *   reaches only that user's resources. The signing key is derived (HKDF) from the master
 *   key, so no other secret has to be managed; every master key in the ring verifies.
 */
import { hash as digest, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { HttpError } from '../http/error.js';
import { bearerToken } from '../store/remote/auth.js';
import type { Keyring } from './crypto.js';
import type { ApiKeyRole, ApiKeyStore, UserStore } from './state/types.js';

export type Principal = { kind: 'key'; role: ApiKeyRole; keyId: string } | { kind: 'user'; userId: string };

export const API_KEY_ROLES: readonly ApiKeyRole[] = ['admin', 'ingest', 'read'];

export function hashApiKey(key: string): string {
  // crypto.hash: the one-shot digest (no Hash object per request).
  return digest('sha256', key, 'hex');
}

export function newApiKey(role: ApiKeyRole): string {
  return `alk_${role}_${randomBytes(32).toString('base64url')}`;
}

const ISSUER = 'alloy-serve';
const AUDIENCE = 'alloy-user';

function tokenKey(master: Buffer): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', master, Buffer.alloc(0), 'alloy user token v1', 32));
}

/**
 * `userCreatedAt` goes in the token (claim `uct`): a user deleted and created again under the
 * same id is another user, and the old user's tokens must not reach the new one's data.
 */
export async function signUserToken(keyring: Keyring, userId: string, ttlSeconds: number, nowMs: number, userCreatedAt?: string): Promise<{ token: string; expiresAt: string }> {
  const { SignJWT } = await import('jose');
  const iat = Math.floor(nowMs / 1000);
  const token = await new SignJWT(userCreatedAt ? { uct: userCreatedAt } : {})
    .setProtectedHeader({ alg: 'HS256', kid: keyring.current.kid })
    .setSubject(userId)
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setIssuedAt(iat)
    .setExpirationTime(iat + ttlSeconds)
    .sign(tokenKey(keyring.current.key));
  return { token, expiresAt: new Date((iat + ttlSeconds) * 1000).toISOString() };
}

async function verifyUserToken(keyring: Keyring, token: string, nowMs: number): Promise<{ userId: string; userCreatedAt?: string } | undefined> {
  const { jwtVerify, decodeProtectedHeader } = await import('jose');
  let kid: string | undefined;
  try {
    kid = decodeProtectedHeader(token).kid;
  } catch {
    return undefined;
  }
  const master = kid ? keyring.get(kid) : undefined;
  if (!master) return undefined;
  try {
    const { payload } = await jwtVerify(token, tokenKey(master.key), { issuer: ISSUER, audience: AUDIENCE, algorithms: ['HS256'], currentDate: new Date(nowMs) });
    if (typeof payload.sub !== 'string') return undefined;
    return { userId: payload.sub, ...(typeof payload.uct === 'string' ? { userCreatedAt: payload.uct } : {}) };
  } catch {
    return undefined;
  }
}

/**
 * What a key record verifies to, made once per record object: the SQLite state hands back the
 * same frozen record while its read cache holds it (dropped on any write of api_keys, or any
 * commit by another connection), so a deleted key stops working as soon as the store says so.
 * Only the derived principal and the stored hash's bytes are kept, never the presented key.
 */
const verifiedKeys = new WeakMap<object, { principal: Principal; hash: Buffer }>();
function keyEntry(rec: { id: string; role: ApiKeyRole; hash: string }): { principal: Principal; hash: Buffer } {
  let e = verifiedKeys.get(rec);
  if (!e) verifiedKeys.set(rec, (e = { principal: Object.freeze({ kind: 'key', role: rec.role, keyId: rec.id }), hash: Buffer.from(rec.hash, 'hex') }));
  return e;
}

const UNAUTHORIZED_HINT = 'Send Authorization: Bearer <API key> (alloy serve keys create) or a user token (POST /v1/users/:id/token).';

/** The caller of a request, or 401. */
export async function authenticate(header: string | undefined, keys: ApiKeyStore, keyring: Keyring, nowMs: number, users?: UserStore): Promise<Principal> {
  const token = bearerToken(header);
  if (!token) throw new HttpError(401, 'E_UNAUTHORIZED', 'missing bearer token', UNAUTHORIZED_HINT, undefined, { 'www-authenticate': 'Bearer realm="alloy"' });
  if (token.startsWith('alk_')) {
    const hash = hashApiKey(token);
    const rec = await keys.findByHash(hash);
    if (rec) {
      // The stored hash compared again in constant time (the lookup itself is not).
      const e = keyEntry(rec);
      const given = Buffer.from(hash, 'hex');
      if (e.hash.length === given.length && timingSafeEqual(e.hash, given)) return e.principal;
    }
  } else {
    const claims = await verifyUserToken(keyring, token, nowMs);
    // With the user store: the user must still exist, and be the one the token was made for.
    const user = claims && users ? await users.get(claims.userId) : undefined;
    const current = claims && (!users || (user !== undefined && (claims.userCreatedAt === undefined || claims.userCreatedAt === user.createdAt)));
    if (claims && current) return { kind: 'user', userId: claims.userId };
  }
  throw new HttpError(401, 'E_UNAUTHORIZED', 'unknown or expired token', UNAUTHORIZED_HINT, undefined, { 'www-authenticate': 'Bearer realm="alloy", error="invalid_token"' });
}

/** What a route allows: API key roles, and `user` for end-user tokens (own resources only). */
export type Access = ApiKeyRole | 'user';

export function authorize(p: Principal, allowed: readonly Access[], route: string): void {
  if (p.kind === 'key') {
    if (p.role === 'admin' || allowed.includes(p.role)) return;
    throw new HttpError(403, 'E_FORBIDDEN', `an API key with the ${p.role} role cannot call ${route}`, `Use a key with one of the roles: ${['admin', ...allowed.filter((a) => a !== 'user' && a !== 'admin')].join(', ')}.`);
  }
  if (!allowed.includes('user')) throw new HttpError(403, 'E_FORBIDDEN', `a user token cannot call ${route}`, 'Call this route from your backend with an API key.');
}

/** A user token reaches only its own user's resources (404, not 403: nothing about others leaks). */
export function assertOwner(p: Principal, userId: string, what = 'resource'): void {
  if (p.kind === 'user' && p.userId !== userId) throw new HttpError(404, 'E_NOT_FOUND', `no such ${what}`);
}
