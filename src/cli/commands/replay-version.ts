/**
 * `alloy replay <id> --version <v>`: runs the stored event of execution <id> on released
 * version <v> (`3`, `latest`, `published`, or `working`), in process through the engine,
 * the app answering as the recorded execution did (test-runner/recorded.ts). Nothing is
 * called and nothing is stored; `alloy compare` shows the difference to another version.
 */
import type { CliContext } from '../context.js';
import { loadValidProject } from '../load-project.js';
import { NotFoundError, UsageError } from '../../errors.js';
import { createConnectorRegistry } from '../../connectors/registry.js';
import { openLogReader } from '../../server/log-reader.js';
import { recordLine, stepLine } from '../../server/terminal-format.js';
import { answersFromRecord, compiledFor, runHarness, streamPlaceholders } from '../../test-runner/index.js';
import { loadSide, parseSideSpec } from './compare-sides.js';

export default async function replayOnVersion(ctx: CliContext, id: string, opts: Record<string, any>): Promise<number> {
  if (!id) throw new UsageError('name the execution to replay', { hint: 'alloy replay <id> --version 2' });
  const project = await loadValidProject(ctx);
  const reader = await openLogReader(project.root, opts.to);
  let record;
  try {
    record = (await reader.getExecution(id))?.record;
  } finally {
    reader.close();
  }
  if (!record) throw new NotFoundError(`no execution ${id}`, { code: 'E_EXECUTION_NOT_FOUND', hint: 'list them with `alloy executions`' });
  const side = await loadSide(ctx, opts, project, record.workflow, parseSideSpec(String(opts.version)));
  const result = await runHarness({
    compiled: compiledFor(side.def),
    workflow: record.workflow,
    executionId: record.id,
    version: side.label,
    event: record.event,
    setup: {
      answers: answersFromRecord(record),
      ...(record.userId ? { user: record.userId } : {}),
      ...(record.startedAt ? { clock: record.startedAt } : {}),
      ...streamPlaceholders(side.def),
    },
    connectors: createConnectorRegistry({ userConnectors: project.connectors.map((c) => c.def) }),
    settings: project.config.apps,
  });
  const r = result.record;
  if (ctx.json) ctx.printJson({ ok: r.status !== 'failed', replayOf: id, version: side.label, execution: r, requests: result.requests, unanswered: result.unanswered });
  else {
    ctx.note(ctx.errColor.dim(`${id} on ${side.label}, in process: the app answers as recorded; nothing is called or stored`));
    ctx.out(recordLine(ctx.color, r));
    for (const s of Object.values(r.steps)) ctx.out(stepLine(ctx.color, s));
    for (const q of result.unanswered) ctx.out(`    ${ctx.color.yellow('unanswered')} ${q.method} ${q.url} ${ctx.color.dim('(no recorded answer: a step this version adds?)')}`);
  }
  return r.status === 'failed' ? 1 : 0;
}
