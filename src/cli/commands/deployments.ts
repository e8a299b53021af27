/**
 * `alloy deployments [integration]`: the publish log, like `wrangler deployments list`: when,
 * who, what moved (publish or rollback, from → to) and the message, oldest first.
 */
import type { CliContext } from '../context.js';
import { assertIntegrationName, type PublishLogEntry } from '../../store/lib.js';
import { findProjectLocation, openCommandStore, withStore } from './store-common.js';

export default async function deploymentsCommand(ctx: CliContext, args: string[], opts: Record<string, any>): Promise<number> {
  const loc = await findProjectLocation(ctx, !opts.store);
  const store = await openCommandStore(ctx, opts, loc);
  return withStore(store, async () => {
    const names = args[0] ? [assertIntegrationName(args[0])] : await store.listIntegrations();
    const all: { integration: string; published: number | null; deployments: PublishLogEntry[] }[] = [];
    for (const name of names) {
      const current = await store.readPublished(name);
      all.push({ integration: name, published: current?.version ?? null, deployments: await store.readPublishLog(name) });
    }
    if (ctx.json) {
      ctx.printJson({ ok: true, store: store.location, integrations: all });
      return 0;
    }
    if (!all.some((a) => a.deployments.length)) {
      ctx.note(args[0] ? `${args[0]} has never been published in ${store.location}` : `nothing has been published in ${store.location}; run \`alloy publish <integration>@<version>\``);
      return 0;
    }
    const c = ctx.color;
    for (const { integration, deployments } of all) {
      if (!deployments.length) continue;
      ctx.out(c.bold(integration));
      for (const d of deployments) {
        const move = `${d.from ? `v${d.from.version}` : '(none)'} → v${d.to.version}`;
        const action = d.action === 'rollback' ? c.yellow('rollback') : c.green('publish ');
        ctx.out(`  ${d.when}  ${action}  ${move.padEnd(12)}  ${d.who}${d.message ? `  ${c.dim(d.message.split('\n')[0])}` : ''}`);
      }
    }
    return 0;
  });
}
