/** Shared by the operator commands: which serve to talk to (`--remote <name>` or `--url`), with ALLOY_API_KEY. */
import type { CliContext } from '../context.js';
import { UsageError } from '../../errors.js';
import { findConfig } from '../../core/project.js';
import { serveClient, type ServeClient } from '../../serve/client.js';

export async function openServeClient(ctx: CliContext, opts: Record<string, any>): Promise<ServeClient> {
  let url: string | undefined = opts.url;
  if (!url) {
    const name: string | undefined = opts.remote;
    if (!name) throw new UsageError('name the serve to talk to', { hint: 'Pass --remote <name> (a remote in alloy.config) or --url http://host:port.' });
    const found = await findConfig(ctx.cwd);
    const remotes = ((found?.config as Record<string, unknown> | undefined)?.remotes ?? {}) as Record<string, { url?: string }>;
    url = remotes[name]?.url;
    if (!url) throw new UsageError(`no remote named "${name}" in the config`, { hint: Object.keys(remotes).length ? `Known remotes: ${Object.keys(remotes).join(', ')}.` : 'Add `remotes: { prod: { url: "https://alloy.example.com" } }` to alloy.config.yaml.' });
  }
  checkServeUrl(url, opts.url ? '--url' : `the url of remote "${opts.remote}"`);
  return serveClient(url, ctx.env.ALLOY_API_KEY);
}

/**
 * `--url 127.0.0.1:4200` (no scheme) used to end in "cannot reach …: Failed to parse URL …
 * Is alloy serve running there?": a usage error said as a network one.
 */
function checkServeUrl(url: string, what: string): void {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
    throw new UsageError(`${what} ${JSON.stringify(url)} is not an http(s) URL`, { code: 'E_BAD_URL', hint: `Give the scheme too, e.g. http://${/^[\w.-]+:\d+$/.test(url) ? url : '127.0.0.1:4200'}.` });
  }
  if (parsed.username || parsed.password) {
    throw new UsageError(`${what} holds a user name or password`, { code: 'E_BAD_URL', hint: 'Leave credentials out of the URL: the API key goes in ALLOY_API_KEY.' });
  }
  // Routes are appended to the URL: after a query they would be part of it (`/?x/v1/users`).
  if (parsed.search || parsed.hash) {
    throw new UsageError(`${what} holds a query or fragment`, { code: 'E_BAD_URL', hint: `Give the server's address alone, e.g. ${parsed.origin}${parsed.pathname.replace(/\/+$/, '')}.` });
  }
}

/** All pages of a list route. */
export async function listAll<T>(client: ServeClient, path: string, max = 10_000): Promise<T[]> {
  const out: T[] = [];
  let cursor: string | null = null;
  do {
    const sep = path.includes('?') ? '&' : '?';
    const page: { items: T[]; next: string | null } = await client.request('GET', `${path}${sep}limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    out.push(...page.items);
    cursor = page.next;
  } while (cursor && out.length < max);
  return out;
}
