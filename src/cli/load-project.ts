/**
 * Loading the working tree for commands: wires the built-in connectors into the core
 * loader, prints diagnostics the one way every command prints them, and refuses invalid
 * definitions with exit 2.
 */
import type { CliContext } from './context.js';
import { ValidationFailedError, NotFoundError, UsageError } from '../errors.js';
import { hasErrors, type Diagnostic } from '../core/diagnostics.js';
import { loadProject } from '../core/project.js';
import type { CodeChecker } from '../core/check-workflow.js';
import type { LoadedProject, LoadedWorkflow } from '../core/project-types.js';
import { builtinConnectorManifests } from '../connectors/builtin-manifests.js';
import { renderDiagnostics, summarize } from './render/diagnostics.js';

/**
 * Loads the project without judging it (dev's hot reload keeps the last good one). Parsed
 * test files are cached under .alloy/cache/ (core/test-file-cache.ts).
 */
export async function loadProjectWithDiagnostics(ctx: CliContext): Promise<LoadedProject> {
  return loadProject(ctx.cwd, { builtinConnectors: builtinConnectorManifests, codeChecker: loadCodeChecker, testFileCache: true });
}

/** The code step's syntax checker, imported only when a workflow has a code step. */
export async function loadCodeChecker(): Promise<CodeChecker> {
  const { sharedSyntaxChecker } = await import('../engine/code-sandbox.js');
  const sandbox = await sharedSyntaxChecker();
  return (code) => sandbox.checkSyntax(code);
}

/** Prints diagnostics to stderr (human) — commands other than validate keep stdout for results. */
export function reportDiagnostics(ctx: CliContext, project: Pick<LoadedProject, 'root'>, diagnostics: readonly Diagnostic[]): void {
  if (diagnostics.length === 0 || ctx.json) return;
  ctx.note(renderDiagnostics(diagnostics, { color: ctx.errColor, root: project.root }));
  ctx.note();
}

/**
 * Loads the project and throws ValidationFailedError (exit 2) after printing any errors.
 * `tests: true` (test, release) counts problems in test files too.
 */
export async function loadValidProject(ctx: CliContext, options: { tests?: boolean } = {}): Promise<LoadedProject> {
  const project = await loadProjectWithDiagnostics(ctx);
  const diagnostics = options.tests ? [...project.diagnostics, ...(project.testDiagnostics ?? [])] : project.diagnostics;
  if (hasErrors(diagnostics)) {
    reportDiagnostics(ctx, project, diagnostics);
    const { text } = summarize(diagnostics, 0);
    throw new ValidationFailedError(`the project has errors (${text.replace(/ \(.*\)$/, '')})`, diagnostics, {
      hint: 'fix them, then run `alloy validate` to check',
    });
  }
  return project;
}

/** Resolves `<integration>/<workflow>` (or a unique `<workflow>`) to a loaded workflow. */
export function findWorkflow(project: LoadedProject, ref: string): LoadedWorkflow {
  const all = project.integrations.flatMap((i) => i.workflows);
  const parts = ref.split('/');
  if (parts.length > 2 || parts.some((p) => p === '')) {
    throw new UsageError(`"${ref}" is not a workflow reference`, { hint: 'use <integration>/<workflow>, e.g. shopify-sync/create-order' });
  }
  const matches = parts.length === 2 ? all.filter((w) => w.integration === parts[0] && w.name === parts[1]) : all.filter((w) => w.name === parts[0]);
  if (matches.length === 1) return matches[0];
  const names = all.map((w) => `${w.integration}/${w.name}`);
  if (matches.length > 1) {
    throw new UsageError(`"${ref}" names more than one workflow`, { hint: `use one of: ${matches.map((w) => `${w.integration}/${w.name}`).join(', ')}` });
  }
  throw new NotFoundError(`no workflow "${ref}"`, { code: 'E_WORKFLOW_NOT_FOUND', hint: names.length ? `workflows: ${names.join(', ')}` : 'this project has no workflows' });
}
