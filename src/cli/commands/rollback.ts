/** `alloy rollback <integration>`: publish the previously published version again (from the log). */
import type { CliContext } from '../context.js';
import { UsageError } from '../../errors.js';
import { rollbackPublished, shortId } from '../../store/lib.js';
import { findProjectLocation, openCommandStore, whoAmI, withStore } from './store-common.js';

export default async function rollbackCommand(ctx: CliContext, args: string[], opts: Record<string, any>): Promise<number> {
  if (!args[0]) throw new UsageError('name the integration to roll back', { hint: 'alloy rollback <integration>' });
  const loc = await findProjectLocation(ctx, !opts.store);
  const store = await openCommandStore(ctx, opts, loc);
  return withStore(store, async () => {
    const result = await rollbackPublished(store, args[0], { who: await whoAmI(ctx, loc?.root ?? ctx.cwd), message: opts.message });
    if (ctx.json) ctx.printJson({ ok: true, ...result });
    else ctx.out(`${ctx.color.yellow('rolled back')} ${result.integration} to v${result.ref.version} ${ctx.color.dim(shortId(result.ref.id))} (was v${result.previous?.version})`);
    return 0;
  });
}
