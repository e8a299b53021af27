/**
 * `alloy serve`: the remote store over HTTP (store part; the runtime mounts beside it later
 * through createStoreRequestHandler). Tokens come from ALLOY_SERVE_TOKENS, never flags, so
 * they stay out of shell history and process lists. Binds 127.0.0.1 unless --host.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { CliContext } from '../context.js';
import { DEFAULT_PORTS } from '../defaults.js';
import { UsageError } from '../../errors.js';
import { DEFAULT_STORE_PATH, LocalStore } from '../../store/lib.js';
import { createStoreServer } from '../../store/remote/server.js';
import { parseTokenList } from '../../store/remote/auth.js';
import { findProjectLocation } from './store-common.js';

export default async function serveCommand(ctx: CliContext, _args: string[], opts: Record<string, any>): Promise<number> {
  const port = opts.port === undefined ? DEFAULT_PORTS.serve : Number(opts.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port ${opts.port} is not a port number`, { hint: 'Use 0..65535 (0 picks a free port).' });
  let dir: string;
  if (opts.store) dir = path.resolve(ctx.cwd, opts.store);
  else {
    const loc = await findProjectLocation(ctx, false);
    if (!loc) throw new UsageError('no store to serve', { hint: 'Pass --store <dir>, or run inside an alloy project (its store.path).' });
    dir = path.resolve(loc.root, loc.config.store?.path ?? DEFAULT_STORE_PATH);
  }
  // ALLOY_SERVE_TOKENS, or ALLOY_SERVE_TOKENS_FILE for secrets mounted as files (one role:token per line).
  let tokenText = ctx.env.ALLOY_SERVE_TOKENS;
  let source = 'ALLOY_SERVE_TOKENS';
  if (!tokenText && ctx.env.ALLOY_SERVE_TOKENS_FILE) {
    source = 'ALLOY_SERVE_TOKENS_FILE';
    try {
      tokenText = (await readFile(path.resolve(ctx.cwd, ctx.env.ALLOY_SERVE_TOKENS_FILE), 'utf8')).split(/\r?\n/).join(',');
    } catch (err) {
      throw new UsageError(`cannot read ALLOY_SERVE_TOKENS_FILE: ${(err as Error).message}`, { hint: 'Point it at a readable file with one role:token per line.' });
    }
  }
  if (!tokenText) {
    throw new UsageError('no tokens configured; refusing to serve a store without authentication', {
      hint: 'Set ALLOY_SERVE_TOKENS="read:<token>,write:<token>" (e.g. tokens from `openssl rand -hex 32`), or ALLOY_SERVE_TOKENS_FILE.',
    });
  }
  const tokens = parseTokenList(tokenText, source);
  const store = new LocalStore(dir, { now: () => ctx.now() });
  await store.init();
  const server = createStoreServer({ store, tokens, host: opts.host ?? '127.0.0.1', port });
  const url = await server.listen();
  if (ctx.json) ctx.printJson({ ok: true, url, store: dir, api: `${url}/v1/store` });
  else ctx.out(`alloy store listening on ${url} (store ${dir})`);
  if (opts.host && opts.host !== '127.0.0.1' && opts.host !== 'localhost' && opts.host !== '::1') {
    ctx.note('note: listening beyond this machine; put TLS in front of it (a reverse proxy) so tokens are not sent in clear text');
  }
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await server.close();
  return 0;
}
