/** `alloy versions [integration]`: the released versions, newest last, with the published one marked. */
import type { CliContext } from '../context.js';
import { UsageError } from '../../errors.js';
import { assertIntegrationName, listVersionInfo, shortId, type VersionInfo } from '../../store/lib.js';
import { findProjectLocation, openCommandStore, withStore } from './store-common.js';

export default async function versionsCommand(ctx: CliContext, args: string[], opts: Record<string, any>): Promise<number> {
  const limit = opts.limit === undefined ? undefined : Number(opts.limit);
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 1)) throw new UsageError('--limit must be a whole number from 1', { hint: 'e.g. --limit 20' });
  const loc = await findProjectLocation(ctx, !opts.store);
  const store = await openCommandStore(ctx, opts, loc);
  return withStore(store, async () => {
    const names = args[0] ? [assertIntegrationName(args[0])] : await store.listIntegrations();
    const all: { integration: string; versions: VersionInfo[] }[] = [];
    for (const name of names) all.push({ integration: name, versions: await listVersionInfo(store, name, { limit }) });
    if (ctx.json) {
      ctx.printJson({ ok: true, store: store.location, integrations: all });
      return 0;
    }
    if (!all.some((a) => a.versions.length)) {
      ctx.note(args[0] ? `${args[0]} has no released versions in ${store.location}` : `no releases in ${store.location}; run \`alloy release\``);
      return 0;
    }
    const c = ctx.color;
    for (const { integration, versions } of all) {
      ctx.out(c.bold(integration));
      for (const v of versions) {
        const mark = v.published ? c.green('* published') : '';
        const msg = v.message ? `  ${v.message.split('\n')[0]}` : '';
        ctx.out(`  v${v.version}  ${c.dim(shortId(v.id))}  ${v.time}  ${v.author}${msg}  ${mark}`.trimEnd());
      }
    }
    return 0;
  });
}
