/**
 * `alloy test [paths..] [--filter] [--update] [--reporter default|junit] [--bail] [--json]`
 * runs the project's workflow tests (integrations/<name>/tests/*.test.yaml) in process
 * through the real engine, with no network; `--record <execution-id>` writes a test file
 * from a stored execution instead. Exit 0 when every test passed, 1 when one failed,
 * 2 for an invalid project or bad flags. The runner is src/test-runner (programmatic API).
 */
import type { CliContext } from '../context.js';
import { loadValidProject } from '../load-project.js';
import { EXIT_FAILURE, EXIT_OK, UsageError } from '../../errors.js';
import { createConnectorRegistry } from '../../connectors/registry.js';
import { formatResultLine, formatSummary, runTests, toJunitXml } from '../../test-runner/index.js';

export default async function testCommand(ctx: CliContext, args: string[], opts: Record<string, any>): Promise<number> {
  if (opts.record !== undefined) {
    const { default: recordCommand } = await import('./test-record.js');
    return recordCommand(ctx, String(opts.record), opts);
  }
  const reporter = String(opts.reporter ?? 'default');
  if (!['default', 'junit'].includes(reporter)) throw new UsageError(`unknown reporter "${reporter}"`, { hint: 'use --reporter default or --reporter junit' });
  if (reporter === 'junit' && ctx.json) throw new UsageError('--json and --reporter junit both want stdout', { hint: 'pick one' });
  const project = await loadValidProject(ctx, { tests: true });
  const connectors = createConnectorRegistry({ userConnectors: project.connectors.map((c) => c.def) });
  const stream = !ctx.json && reporter === 'default';
  const summary = await runTests({
    project,
    connectors,
    paths: args,
    cwd: ctx.cwd,
    filter: opts.filter,
    update: Boolean(opts.update),
    ci: ctx.env.CI === 'true' || ctx.env.CI === '1',
    bail: Boolean(opts.bail),
    onResult: stream ? (r) => ctx.out(formatResultLine(r, ctx.color)) : undefined,
  });
  if (summary.results.length === 0 && summary.notRun === 0) {
    const where = args.length ? ` under ${args.join(', ')}` : '';
    throw new UsageError(`no tests found${where}${opts.filter ? ` matching "${opts.filter}"` : ''}`, {
      code: 'E_NO_TESTS',
      hint: 'add integrations/<name>/tests/<workflow>.test.yaml (docs/testing.md), or record one: alloy test --record <execution-id>',
    });
  }
  if (ctx.json) ctx.printJson(summary);
  else if (reporter === 'junit') {
    ctx.out(toJunitXml(summary).trimEnd());
    ctx.note(formatSummary(summary, project, ctx.errColor));
  } else ctx.out(formatSummary(summary, project, ctx.color));
  return summary.ok ? EXIT_OK : EXIT_FAILURE;
}
