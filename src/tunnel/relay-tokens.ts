/**
 * Developer tokens for the relay. Each token is bound to exactly one tunnel name, so a
 * developer holding `alice`'s token can only ever connect as `alice` and receive `alice`'s
 * traffic. Tokens come from ALLOY_RELAY_TOKENS ("alice:tok1,bob:tok2") or a file with one
 * `name:token` a line (# comments allowed). Token values are never logged or printed.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { UsageError } from '../errors.js';
import { isValidTunnelName } from './ingress-paths.js';

export interface RelayTokens {
  /** Names that have a token (the only names the relay serves or queues for). */
  names(): string[];
  has(name: string): boolean;
  /**
   * The name a presented token belongs to, or undefined. Every configured token is compared
   * (constant time, over SHA-256 digests so lengths do not leak) whatever matches first.
   */
  authenticate(token: string): string | undefined;
}

const MIN_TOKEN_LENGTH = 16;

/** Parse "name:token" entries separated by commas or newlines. */
export function parseRelayTokens(text: string, source = 'ALLOY_RELAY_TOKENS'): RelayTokens {
  const byName = new Map<string, Buffer>();
  const entries = text
    .split(/[\n,]/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  entries.forEach((entry, index) => {
    const colon = entry.indexOf(':');
    const name = colon === -1 ? '' : entry.slice(0, colon).trim();
    const token = colon === -1 ? '' : entry.slice(colon + 1).trim();
    const where = `${source} entry ${index + 1}`;
    if (!name || !token) {
      throw new UsageError(`${where} is not "name:token"`, {
        code: 'E_RELAY_TOKENS',
        hint: 'Write tokens as name:token pairs, e.g. ALLOY_RELAY_TOKENS="alice:<random>,bob:<random>".',
      });
    }
    if (!isValidTunnelName(name)) {
      throw new UsageError(`${where}: tunnel name "${name}" must be lower-case letters, digits and dashes`, {
        code: 'E_RELAY_TOKENS',
        hint: 'Names become URL path segments: use e.g. "alice" or "team-bob".',
      });
    }
    if (token.length < MIN_TOKEN_LENGTH) {
      throw new UsageError(`${where}: the token for "${name}" is shorter than ${MIN_TOKEN_LENGTH} characters`, {
        code: 'E_RELAY_TOKENS',
        hint: 'Generate one with: node -e "console.log(require(\'crypto\').randomBytes(24).toString(\'base64url\'))"',
      });
    }
    if (byName.has(name)) {
      throw new UsageError(`${where}: tunnel name "${name}" is listed twice`, { code: 'E_RELAY_TOKENS' });
    }
    byName.set(name, digest(token));
  });
  if (byName.size === 0) {
    throw new UsageError(`${source} lists no tokens`, {
      code: 'E_RELAY_TOKENS',
      hint: 'Set ALLOY_RELAY_TOKENS="alice:<token>" or pass --tokens-file <file>.',
    });
  }
  return {
    names: () => [...byName.keys()],
    has: (name) => byName.has(name),
    authenticate(token) {
      const presented = digest(token);
      let found: string | undefined;
      for (const [name, expected] of byName) {
        if (timingSafeEqual(presented, expected) && found === undefined) found = name;
      }
      return found;
    },
  };
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}
