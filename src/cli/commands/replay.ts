/**
 * `alloy replay <id> [--wait] [--timeout]`: a new execution from the stored event of
 * execution <id>, on the current definitions, run by the running `alloy dev`.
 * `alloy replay <id> --version <v>`: the stored event on released version <v> (or
 * `working`), in process, the app answering as recorded: nothing is called or stored.
 */
import type { CliContext } from '../context.js';
import { AlloyError } from '../../errors.js';
import { findConfig } from '../../core/find-config.js';
import { findRuntime } from '../../server/client.js';
import { recordLine, stepLine } from '../../server/terminal-format.js';
import { parseTimeout, waitProgress } from './emit.js';

export default async function replay(ctx: CliContext, args: string[], opts: Record<string, any>): Promise<number> {
  const [id] = args;
  if (opts.version !== undefined) {
    const { default: replayOnVersion } = await import('./replay-version.js');
    return replayOnVersion(ctx, id, opts);
  }
  const root = (await findConfig(ctx.cwd))?.root ?? ctx.cwd;
  const timeoutMs = parseTimeout(opts.timeout ?? '30s');
  const client = (await findRuntime(root, opts.to))!;
  const accepted = await client.replay(id);
  const newId = accepted.executions[0].id;
  if (!opts.wait) {
    if (ctx.json) ctx.printJson(accepted);
    else ctx.out(`${ctx.color.green('replaying')} ${id} as ${newId}  ${accepted.executions[0].workflow ?? ''}`.trimEnd());
    return 0;
  }
  const spinner = await ctx.spinner(`waiting for ${newId}`);
  const ex = await client.waitForExecution(newId, timeoutMs, waitProgress(ctx, spinner)).finally(() => spinner.stop());
  if (ctx.json) ctx.printJson({ ...accepted, result: ex });
  else {
    ctx.out(recordLine(ctx.color, ex.record));
    if (ctx.verbose || ex.status === 'failed') for (const s of Object.values(ex.record.steps ?? {})) ctx.out(stepLine(ctx.color, s));
  }
  if (!['succeeded', 'failed', 'filtered'].includes(ex.status)) {
    throw new AlloyError('E_WAIT_TIMEOUT', `the replay did not finish within ${opts.timeout ?? '30s'}`, { hint: 'raise --timeout, or follow it with `alloy logs -f`' });
  }
  return ex.status === 'failed' ? 1 : 0;
}
