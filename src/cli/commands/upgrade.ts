/** `alloy upgrade <integration>[@version] (--user <id> | --all)`: move installations on a running alloy serve to a version (default: published). */
import type { CliContext } from '../context.js';
import { UsageError } from '../../errors.js';
import { openServeClient } from './serve-remote.js';

export default async function upgradeCommand(ctx: CliContext, args: string[], opts: Record<string, any>): Promise<number> {
  const spec = args[0] ?? '';
  const m = /^([a-z0-9][a-z0-9-]*)(?:@v?([1-9][0-9]*|published))?$/.exec(spec);
  if (!m) throw new UsageError(`"${spec}" is not <integration>[@version]`, { hint: 'e.g. alloy upgrade shopify-sync@3 --all' });
  if (!opts.user === !opts.all) throw new UsageError('say whose installations to upgrade', { hint: 'Pass --user <id> or --all.' });
  const client = await openServeClient(ctx, opts);
  const version = m[2] === undefined || m[2] === 'published' ? undefined : Number(m[2]);
  const r = await client.request('POST', `/v1/integrations/${m[1]}/upgrade`, { ...(version ? { version } : {}), ...(opts.user ? { userId: opts.user } : {}) });
  if (ctx.json) ctx.printJson({ ok: r.failed.length === 0, ...r });
  else {
    ctx.out(`${m[1]}@${r.version}: upgraded ${r.upgraded.length} installation(s)`);
    for (const f of r.failed) ctx.out(`  not upgraded ${f.id}: ${f.message}`);
  }
  return r.failed.length === 0 ? 0 : 1;
}
