/**
 * `alloy rollback <integration> [--to <version>] [-m msg] [--yes]`: publish the previously
 * published version again (from the log), or the version `--to` names. On a TTY it shows the
 * move and asks first (`--yes` skips the question); elsewhere it goes ahead, as CI expects.
 */
import type { CliContext } from '../context.js';
import { UsageError } from '../../errors.js';
import { parseVersionSpec, planRollback, rollbackPublished, shortId } from '../../store/lib.js';
import { findProjectLocation, openCommandStore, whoAmI, withStore } from './store-common.js';

export default async function rollbackCommand(ctx: CliContext, args: string[], opts: Record<string, any>): Promise<number> {
  if (!args[0]) throw new UsageError('name the integration to roll back', { hint: 'alloy rollback <integration> [--to <version>]' });
  const to = opts.to === undefined ? undefined : parseVersionSpec(`${args[0]}@${String(opts.to).replace(/^@/, '')}`);
  const loc = await findProjectLocation(ctx, !opts.store);
  const store = await openCommandStore(ctx, opts, loc);
  return withStore(store, async () => {
    const plan = await planRollback(store, args[0], to);
    const c = ctx.color;
    if (ctx.interactive && !opts.yes && !ctx.json) {
      const { confirm } = await import('@inquirer/prompts');
      const io = { input: ctx.io.stdin as NodeJS.ReadableStream, output: ctx.io.stdout as NodeJS.WritableStream };
      const ok = await confirm({ message: `Roll ${args[0]} back from v${plan.current.version} to v${plan.target.version} (${shortId(plan.target.id)})?`, default: false }, io);
      if (!ok) {
        ctx.note('cancelled: nothing changed');
        return 1;
      }
    }
    const result = await rollbackPublished(store, args[0], { who: await whoAmI(ctx, loc?.root ?? ctx.cwd), message: opts.message, plan });
    if (ctx.json) ctx.printJson({ ok: true, ...result });
    else ctx.out(`${c.yellow('rolled back')} ${result.integration} to v${result.ref.version} ${c.dim(shortId(result.ref.id))} (was v${result.previous?.version})`);
    return 0;
  });
}
