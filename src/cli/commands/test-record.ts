/**
 * `alloy test --record <execution-id>`: writes integrations/<name>/tests/<workflow>.<id>.test.yaml
 * from a stored execution (its event, the app's answers as recorded, the outputs as
 * expectations), with secret-looking values redacted. Never overwrites a file.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { CliContext } from '../context.js';
import { loadValidProject } from '../load-project.js';
import { MAX_TEST_FILE_BYTES } from '../../core/project.js';
import { AlloyError, NotFoundError } from '../../errors.js';
import { openLogReader } from '../../server/log-reader.js';
import { testFileFromRecord } from '../../test-runner/recorded.js';
import { ensureProjectDirAsync } from '../../core/safe-fs.js';

export default async function recordCommand(ctx: CliContext, id: string, opts: Record<string, any>): Promise<number> {
  const project = await loadValidProject(ctx);
  const reader = await openLogReader(project.root, opts.to);
  let ex;
  try {
    ex = await reader.getExecution(id);
  } finally {
    reader.close();
  }
  if (!ex) throw new NotFoundError(`no execution ${id}`, { code: 'E_EXECUTION_NOT_FOUND', hint: 'list them with `alloy executions`' });
  const [integrationName, workflowName] = ex.record.workflow.split('/');
  const integration = project.integrations.find((i) => i.name === integrationName);
  const workflow = integration?.workflows.find((w) => w.name === workflowName);
  if (!integration || !workflow) {
    throw new NotFoundError(`execution ${id} ran ${ex.record.workflow}, which is not in the working tree`, {
      code: 'E_WORKFLOW_NOT_FOUND',
      hint: 'record it from a project that still has the workflow',
    });
  }
  const testsDir = path.join(project.root, integration.dir, 'tests');
  const schemaRef = path.relative(testsDir, path.join(project.root, 'schemas', 'test.schema.json')).split(path.sep).join('/');
  const text = testFileFromRecord(ex.record, workflow.def, schemaRef);
  const short = id.replace(/^(exec|ex)_/, '').slice(-12);
  const file = path.join(testsDir, `${workflow.name}.${short}.test.yaml`);
  // Loading refuses a test file over the limit (E_FILE_TOO_LARGE): one that large is not written.
  const size = Buffer.byteLength(text);
  if (size > MAX_TEST_FILE_BYTES) {
    const mib = (n: number) => `${(n / (1024 * 1024)).toFixed(1)} MiB`;
    throw new AlloyError('E_FILE_TOO_LARGE', `the test recorded from ${id} would be ${mib(size)}; test files are limited to ${mib(MAX_TEST_FILE_BYTES)}`, {
      exitCode: 2,
      hint: 'record an execution with a smaller event and answers, or write the test by hand (docs/testing.md)',
      details: { size, limit: MAX_TEST_FILE_BYTES },
    });
  }
  // A linked tests/ folder (a hostile clone) is refused, not written through; the integration's
  // folder is where its workflows were read from, links and all (a monorepo's).
  await ensureProjectDirAsync(testsDir, path.join(project.root, integration.dir));
  try {
    // 'wx': never overwrite, never write through a symlink planted at the path.
    await writeFile(file, text, { flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new AlloyError('E_FILE_EXISTS', `${path.relative(ctx.cwd, file)} already exists`, { exitCode: 2, hint: 'delete or rename it, then record again' });
    }
    throw err;
  }
  const rel = path.relative(project.root, file).split(path.sep).join('/');
  if (ctx.json) ctx.printJson({ ok: true, file: rel, execution: id, workflow: ex.record.workflow });
  else {
    ctx.out(`${ctx.color.green('recorded')} ${ex.record.workflow} ${id} → ${rel}`);
    ctx.note(ctx.errColor.dim('run it with `alloy test ' + rel + '`; rename the test to say what it proves'));
  }
  return 0;
}
