/** `alloy install <integration> --user <id> [--version n] [--credential app=id] [--config k=v]`: install for a user of a running alloy serve. */
import type { CliContext } from '../context.js';
import { UsageError } from '../../errors.js';
import { setOwn } from '../../core/own-key.js';
import { openServeClient } from './serve-remote.js';
import { printInstallations } from './installations.js';

/** `k=v` pairs; a value that parses as JSON is taken as JSON (`limit=5`, `on=true`), else as text. */
export function pairs(list: string[] | undefined, flag: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const item of list ?? []) {
    const i = item.indexOf('=');
    if (i < 1) throw new UsageError(`${flag} ${item} is not name=value`, { hint: `e.g. ${flag} ${flag === '--credential' ? 'shopify=cred_…' : 'tag=vip'}` });
    const raw = item.slice(i + 1);
    let v: unknown = raw;
    try {
      v = JSON.parse(raw);
    } catch {
      /* text */
    }
    // `1e309` parses to Infinity, which JSON sends as null (which removes a config value).
    if (typeof v === 'number' && !Number.isFinite(v)) v = raw;
    // An own key even for `__proto__` (assignment set the prototype: the value vanished and the
    // server, never seeing it, installed without it instead of refusing the name).
    setOwn(out, item.slice(0, i), v);
  }
  return out;
}

export default async function installCommand(ctx: CliContext, args: string[], opts: Record<string, any>): Promise<number> {
  const [integration] = args;
  if (!integration || !opts.user) throw new UsageError('name the integration and the user', { hint: 'alloy install shopify-sync --user acme-123 --credential shopify=cred_… --remote prod' });
  const client = await openServeClient(ctx, opts);
  const version = opts.version === undefined ? undefined : Number(opts.version);
  if (version !== undefined && !(Number.isInteger(version) && version > 0)) throw new UsageError(`--version ${opts.version} is not a version number`, { hint: 'e.g. --version 3 (default: the published one)' });
  const credentials = pairs(opts.credential, '--credential');
  const inst = await client.request('POST', '/v1/installations', { userId: opts.user, integration, ...(version ? { version } : {}), credentials, config: pairs(opts.config, '--config') });
  if (ctx.json) ctx.printJson({ ok: true, installation: inst });
  else printInstallations(ctx, [inst]);
  return 0;
}
