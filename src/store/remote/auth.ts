/**
 * Bearer tokens with two roles: `read` (negotiate, list, read) and `write` (also upload,
 * create versions, move `published`). Tokens are compared in constant time: both sides are
 * hashed to 32 bytes first so timingSafeEqual never sees different lengths, and every
 * configured token is compared (no early exit) so timing does not tell which one matched.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { UsageError } from '../../errors.js';

export type Role = 'read' | 'write';

export interface TokenEntry {
  role: Role;
  digest: Buffer;
}

const digest = (token: string) => createHash('sha256').update(token, 'utf8').digest();

export function makeTokens(entries: { role: Role; token: string }[]): TokenEntry[] {
  return entries.map((e) => ({ role: e.role, digest: digest(e.token) }));
}

/** `read:tok1,write:tok2` (ALLOY_SERVE_TOKENS). Tokens shorter than 16 characters are refused. */
export function parseTokenList(text: string, source = 'ALLOY_SERVE_TOKENS'): TokenEntry[] {
  const out: { role: Role; token: string }[] = [];
  const parts = text.split(',').map((p) => p.trim()).filter(Boolean);
  for (const [n, part] of parts.entries()) {
    const i = part.indexOf(':');
    const role = i < 0 ? '' : part.slice(0, i);
    const token = i < 0 ? '' : part.slice(i + 1);
    if ((role !== 'read' && role !== 'write') || !token) {
      // Never echo the entry: it may be a token written without its role.
      throw new UsageError(`${source}: entry ${n + 1} is not role:token`, {
        hint: `Write ${source}="read:<token>,write:<token>" (roles are read and write).`,
      });
    }
    if (token.length < 16) {
      throw new UsageError(`${source}: a ${role} token is shorter than 16 characters`, {
        hint: 'Use long random tokens, e.g. `openssl rand -hex 32`.',
      });
    }
    out.push({ role, token });
  }
  return makeTokens(out);
}

/**
 * Names a token without revealing it: `sha256:` and the first 12 hex digits of its digest.
 * Recorded beside each version the token pushed (the client's `author` is only a claim).
 */
export function tokenFingerprint(presented: string): string {
  return `sha256:${digest(presented).toString('hex').slice(0, 12)}`;
}

/** The role of a presented token, or undefined when it is unknown. */
export function roleOf(tokens: TokenEntry[], presented: string): Role | undefined {
  const d = digest(presented);
  let role: Role | undefined;
  for (const t of tokens) {
    if (timingSafeEqual(t.digest, d)) role = role === 'write' || t.role === 'write' ? 'write' : 'read';
  }
  return role;
}

export function allows(have: Role, need: Role): boolean {
  return have === 'write' || need === 'read';
}

/** The token from `Authorization: Bearer <token>` (RFC 6750 §2.1), or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer[ ]+([A-Za-z0-9\-._~+/]+=*)\s*$/i.exec(header);
  return m ? m[1] : undefined;
}
