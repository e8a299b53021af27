/**
 * `alloy executions [id] [--status] [--workflow] [--limit] [--json]`: the execution history
 * from the event log (through the running `alloy dev`, or the file when it is stopped).
 * With an id: that execution's step trace.
 */
import { count } from '../render/count.js';
import type { CliContext } from '../context.js';
import { NotFoundError, UsageError } from '../../errors.js';
import { findConfig } from '../../core/find-config.js';
import { openLogReader } from '../../server/log-reader.js';
import { formatDuration, preview, statusMark, stepLine, summaryLine } from '../../server/terminal-format.js';

const STATUSES = ['queued', 'running', 'succeeded', 'failed', 'filtered'];

export default async function executions(ctx: CliContext, args: string[], opts: Record<string, any>): Promise<number> {
  if (opts.remote) return (await import('./executions-remote.js')).default(ctx, args, opts);
  const root = (await findConfig(ctx.cwd))?.root ?? ctx.cwd;
  if (opts.status && !STATUSES.includes(opts.status)) {
    throw new UsageError(`unknown status "${opts.status}"`, { hint: `use one of: ${STATUSES.join(', ')}` });
  }
  const limit = opts.limit === undefined ? 20 : Number(opts.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new UsageError('--limit must be an integer from 1 to 1000', { hint: 'e.g. --limit 50' });
  const reader = await openLogReader(root, opts.to);
  try {
    const [id] = args;
    if (id) {
      const ex = await reader.getExecution(id);
      if (!ex) throw new NotFoundError(`no execution ${id}`, { code: 'E_EXECUTION_NOT_FOUND', hint: 'list them with `alloy executions`' });
      if (ctx.json) {
        ctx.printJson(ex);
        return 0;
      }
      const c = ctx.color;
      ctx.out(summaryLine(c, ex));
      ctx.out(`  ${c.dim('delivery')} ${ex.deliveryId}${ex.replayOf ? `  ${c.dim('replay of')} ${ex.replayOf}` : ''}${ex.userId ? `  ${c.dim('user')} ${ex.userId}` : ''}  ${c.dim('version')} ${ex.record.version ?? '-'}`);
      for (const s of Object.values(ex.record.steps ?? {})) {
        ctx.out(stepLine(c, s));
        if (ctx.verbose && s.inputs !== undefined) ctx.out(`        ${c.dim('in ')} ${preview(s.inputs, 160)}`);
        for (const line of s.logs ?? []) ctx.out(`        ${c.dim('log')} ${line}`);
        if (s.output !== undefined) ctx.out(`        ${c.dim('out')} ${preview(s.output, ctx.verbose ? 400 : 100)}`);
      }
      if (ex.record.stream) {
        const st = ex.record.stream;
        const why = st.status === 'failed' && st.error ? `  ${c.red(st.error.message)}` : '';
        ctx.out(`    ${c.dim('↳')} stream ${st.url}  ${statusMark(c, st.status === 'delivered' ? 'succeeded' : 'failed')}  ${c.dim(count(st.attempts, 'attempt'))}${st.statusCode ? c.dim(`  HTTP ${st.statusCode}`) : ''}${why}`);
      }
      return ex.status === 'failed' ? 1 : 0;
    }
    const list = await reader.listExecutions({ status: opts.status, workflow: opts.workflow, limit });
    if (ctx.json) {
      ctx.printJson({ executions: list });
      return 0;
    }
    if (list.length === 0) {
      ctx.note('no executions yet' + (opts.status || opts.workflow ? ' matching the filters' : ''));
      return 0;
    }
    // Oldest first, like a log, so the newest is next to the prompt.
    for (const e of [...list].reverse()) ctx.out(summaryLine(ctx.color, e));
    if (ctx.verbose) ctx.note(ctx.errColor.dim(`${count(list.length, 'execution')}, read ${reader.via === 'api' ? 'from the running alloy dev' : 'from .alloy/dev.sqlite'}`));
    return 0;
  } finally {
    reader.close();
  }
}

export { formatDuration };
