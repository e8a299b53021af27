/**
 * `alloy validate [paths..] [--json] [--fail-on-warn]`: a thin shell over
 * core/validate-paths.ts that prints diagnostics and sets the exit code.
 */
import type { CliContext } from '../context.js';
import { EXIT_OK, EXIT_USAGE } from '../../errors.js';
import { hasErrors } from '../../core/diagnostics.js';
import { validatePaths, type ValidateResult } from '../../core/validate-paths.js';
import { builtinConnectorManifests } from '../../connectors/builtin-manifests.js';
import { renderDiagnostics, summarize } from '../render/diagnostics.js';
import { loadCodeChecker } from '../load-project.js';

export default async function validateCommand(ctx: CliContext, paths: string[], opts: { failOnWarn?: boolean }): Promise<number> {
  const spinner = await ctx.spinner('Validating');
  let result: ValidateResult;
  try {
    result = await validatePaths(ctx.cwd, paths, builtinConnectorManifests, loadCodeChecker);
  } finally {
    spinner.stop();
  }
  const failed = hasErrors(result.diagnostics, Boolean(opts.failOnWarn));
  if (ctx.json) {
    ctx.printJson(result.diagnostics);
  } else {
    if (result.diagnostics.length > 0) {
      ctx.out(renderDiagnostics(result.diagnostics, { color: ctx.color, root: ctx.cwd }));
      ctx.out();
    }
    const { text } = summarize(result.diagnostics, result.files.length);
    ctx.out(failed ? ctx.color.red(`✖ ${text}`) : ctx.color.green(`✔ ${text}`));
  }
  return failed ? EXIT_USAGE : EXIT_OK;
}
