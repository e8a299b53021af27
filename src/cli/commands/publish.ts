/** `alloy publish <integration>@<version|latest>`: move the live pointer (compare-and-swap, logged). */
import type { CliContext } from '../context.js';
import { UsageError } from '../../errors.js';
import { parseVersionSpec, publishVersion, shortId } from '../../store/lib.js';
import { findProjectLocation, openCommandStore, whoAmI, withStore } from './store-common.js';

export default async function publishCommand(ctx: CliContext, args: string[], opts: Record<string, any>): Promise<number> {
  if (!args[0]) throw new UsageError('name what to publish', { hint: 'alloy publish <integration>@<version|latest>, e.g. alloy publish shopify-sync@3' });
  const spec = parseVersionSpec(args[0], 'latest');
  if (spec.selector === 'published') throw new UsageError('publishing @published changes nothing', { hint: 'Name a version: <integration>@3 or @latest.' });
  const loc = await findProjectLocation(ctx, !opts.store);
  const store = await openCommandStore(ctx, opts, loc);
  return withStore(store, async () => {
    const result = await publishVersion(store, spec, { who: await whoAmI(ctx, loc?.root ?? ctx.cwd), message: opts.message });
    if (ctx.json) ctx.printJson({ ok: true, ...result });
    else if (result.status === 'already-published') ctx.out(`${spec.integration} v${result.ref.version} ${ctx.color.dim(shortId(result.ref.id))} is already published`);
    else {
      const from = result.previous ? ` (was v${result.previous.version})` : '';
      ctx.out(`${ctx.color.green('published')} ${spec.integration} v${result.ref.version} ${ctx.color.dim(shortId(result.ref.id))}${from}`);
    }
    return 0;
  });
}
