/**
 * Which paths a tunnel may carry. Only the runtime's ingress routes are ever exposed:
 * `POST /v1/run/event` and `POST /v1/webhooks/<...>`. The executions API, replay, health
 * and anything else stay on the developer's machine. Checked by the relay, again by the
 * relay client before it forwards, and by the ingress gate in front of ngrok/cloudflared
 * (defence in depth: the dev server's ingress listener checks a third time).
 */
import type { HeaderPairs } from './protocol.js';

const SEGMENT = /^[A-Za-z0-9_~-][A-Za-z0-9._~-]*$/;

/**
 * True when `pathname` (no query) is an ingress path. Dot segments, empty segments and
 * percent-encoding are refused outright rather than normalised, so `/v1/webhooks/../executions`
 * or `/v1/webhooks/%2e%2e/x` can never be turned into something else further along.
 */
export function isIngressPath(pathname: string): boolean {
  if (pathname === '/v1/run/event') return true;
  if (!pathname.startsWith('/v1/webhooks/')) return false;
  const rest = pathname.slice('/v1/webhooks/'.length).split('/');
  if (rest.length > 8) return false;
  return rest.every((s) => SEGMENT.test(s) && s !== '.' && s !== '..');
}

/** Split `path?query` and check the path part; undefined when the target is not ingress. */
export function checkIngressTarget(target: string): { pathname: string; search: string } | undefined {
  if (!target.startsWith('/') || target.startsWith('//') || target.includes('#')) return undefined;
  const q = target.indexOf('?');
  const pathname = q === -1 ? target : target.slice(0, q);
  const search = q === -1 ? '' : target.slice(q);
  return isIngressPath(pathname) ? { pathname, search } : undefined;
}

/** Hop-by-hop headers (RFC 9110 section 7.6.1) and ones the next hop recomputes. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'content-length',
  'expect',
]);

/** Header pairs worth forwarding from node's rawHeaders list (names lower-cased). */
export function forwardableHeaders(rawHeaders: readonly string[]): HeaderPairs {
  const connectionListed = new Set<string>();
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i].toLowerCase() === 'connection') {
      for (const token of rawHeaders[i + 1].split(',')) connectionListed.add(token.trim().toLowerCase());
    }
  }
  const out: HeaderPairs = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i].toLowerCase();
    if (HOP_BY_HOP.has(name) || connectionListed.has(name)) continue;
    out.push([name, rawHeaders[i + 1]]);
  }
  return out;
}

/** Drop hop-by-hop names from a pair list (used on both sides of the wire). */
export function filterHeaderPairs(pairs: unknown): HeaderPairs {
  if (!Array.isArray(pairs)) return [];
  const out: HeaderPairs = [];
  for (const p of pairs) {
    if (!Array.isArray(p) || typeof p[0] !== 'string' || typeof p[1] !== 'string') continue;
    const name = p[0].toLowerCase();
    if (HOP_BY_HOP.has(name)) continue;
    // A header value with CR/LF would be a response-splitting attempt: drop it.
    if (/[\r\n]/.test(p[1]) || !/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name)) continue;
    out.push([name, p[1]]);
  }
  return out;
}

/** Tunnel names become URL path segments and directory names: a DNS-label-like subset. */
export const TUNNEL_NAME_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

export function isValidTunnelName(name: string): boolean {
  return TUNNEL_NAME_PATTERN.test(name);
}
