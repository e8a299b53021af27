/**
 * A small client of the Embedded API for operator commands (`alloy users`, `install`,
 * `installations`, `upgrade`, `executions --remote`). The server is named like a remote
 * store: `--remote <name>` (its `url` under `remotes` in alloy.config) or `--url`; the API
 * key comes from ALLOY_API_KEY, never a flag or the config file.
 */
import { AlloyError, UsageError } from '../errors.js';

export interface ServeClient {
  url: string;
  request<T = any>(method: string, path: string, body?: unknown): Promise<T>;
}

export function serveClient(url: string, key: string | undefined): ServeClient {
  if (!key) throw new UsageError('no API key for the serve API', { hint: 'Set ALLOY_API_KEY to a key from `alloy serve keys create --role admin` (or read for lists).' });
  const base = url.replace(/\/+$/, '');
  return {
    url: base,
    async request(method, path, body) {
      let res: Response;
      try {
        res = await fetch(base + path, { method, headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, body: body === undefined ? undefined : JSON.stringify(body) });
      } catch (err) {
        throw new AlloyError('E_REMOTE_UNREACHABLE', `cannot reach ${base}: ${(err as Error).message}`, { hint: 'Is alloy serve running there? Check the remote\'s url in alloy.config.' });
      }
      const text = await res.text();
      let json: any;
      try {
        json = text ? JSON.parse(text) : undefined;
      } catch {
        json = undefined;
      }
      if (!res.ok) {
        const e = json?.error ?? {};
        // The server refusing what was given (400, 422: a bad flag value, config or id) is a
        // validation error of this command, exit 2, as the same refusal made locally is.
        const refused = res.status === 400 || res.status === 422;
        throw new AlloyError(e.code ?? 'E_REMOTE', `${method} ${path}: ${e.message ?? `HTTP ${res.status}`}`, { hint: e.hint ?? (res.status === 401 ? 'Check ALLOY_API_KEY.' : undefined), details: e.details, exitCode: refused ? 2 : 1 });
      }
      // A 2xx that is not a JSON object is not alloy serve (a proxy's sign-in page, another server):
      // said so, rather than failing later on a missing field as an internal error.
      if (res.status !== 204 && (json === null || typeof json !== 'object')) {
        throw new AlloyError('E_REMOTE_NOT_SERVE', `${method} ${path}: ${base} answered ${res.status} with ${text ? `non-JSON (${res.headers.get('content-type') ?? 'no content-type'})` : 'an empty body'}, not the serve API`, { hint: 'Check that the URL is the address alloy serve listens on (its root, without a path the API is not under).' });
      }
      return json;
    },
  };
}
