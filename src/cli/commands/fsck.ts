/** `alloy fsck`: verify every object and ref of a store; report each problem; exit 1 on any error. */
import { count } from '../render/count.js';
import type { CliContext } from '../context.js';
import { fsckStore } from '../../store/lib.js';
import { findProjectLocation, openCommandStore, withStore } from './store-common.js';

export default async function fsckCommand(ctx: CliContext, _args: string[], opts: Record<string, any>): Promise<number> {
  const loc = await findProjectLocation(ctx, !opts.store);
  const store = await openCommandStore(ctx, opts, loc);
  return withStore(store, async () => {
    const spinner = await ctx.spinner(`checking ${store.location}`);
    const report = await fsckStore(store).finally(() => spinner.stop());
    if (ctx.json) ctx.printJson({ ok: report.errors === 0, ...report });
    else {
      const c = ctx.color;
      for (const p of report.problems) {
        const tag = p.severity === 'error' ? c.red('error') : c.yellow('warning');
        ctx.out(`${tag} ${c.dim(p.code)} ${p.message}${p.path && !p.message.includes(p.path) ? ` (${p.path})` : ''}`);
      }
      const summary = `checked ${count(report.objects, 'object')} and ${count(report.versions, 'version')} in ${count(report.integrations, 'integration')}: ${count(report.errors, 'error')}, ${count(report.warnings, 'warning')}`;
      ctx.out(report.errors ? c.red(summary) : summary);
    }
    return report.errors ? 1 : 0;
  });
}
