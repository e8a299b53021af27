/**
 * Validating paths: every problem in every file in one run. Paths inside a project are
 * checked with the whole project (cross-file rules apply) and reported for those paths;
 * files outside any project are checked on their own, by their `kind`.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { AlloyError, EXIT_USAGE } from '../errors.js';
import { sortDiagnostics, type Diagnostic } from './diagnostics.js';
import type { ConnectorManifest } from './model.js';
import { checkStandaloneFile, definitionFilesUnder, findConfig, loadProjectAt, noProjectError, type LoadProjectOptions } from './project.js';

export interface ValidateResult {
  diagnostics: Diagnostic[];
  files: string[];
}

/** The programmatic API behind the command. Paths are relative to `cwd`. */
export async function validatePaths(
  cwd: string,
  paths: string[],
  builtinConnectors: readonly ConnectorManifest[],
  codeChecker?: LoadProjectOptions['codeChecker'],
): Promise<ValidateResult> {
  const diagnostics: Diagnostic[] = [];
  const files = new Set<string>();
  const show = (abs: string) => path.relative(cwd, abs).split(path.sep).join('/') || '.';

  if (paths.length === 0) {
    const found = await findConfig(cwd);
    if (!found) throw noProjectError(cwd);
    const project = await loadProjectAt(found, { builtinConnectors, codeChecker });
    for (const d of [...project.diagnostics, ...(project.testDiagnostics ?? [])]) diagnostics.push({ ...d, file: show(path.join(project.root, d.file)) });
    for (const f of project.files) files.add(show(path.join(project.root, f)));
    return { diagnostics: sortDiagnostics(diagnostics), files: [...files] };
  }

  const projects = new Map<string, Awaited<ReturnType<typeof loadProjectAt>>>();
  for (const p of paths) {
    const abs = path.resolve(cwd, p);
    let isDirectory: boolean;
    try {
      isDirectory = (await stat(abs)).isDirectory();
    } catch {
      throw new AlloyError('E_NO_SUCH_PATH', `no such file or folder: ${p}`, {
        hint: 'pass paths to definition files or folders that exist',
        exitCode: EXIT_USAGE,
      });
    }
    const found = await findConfig(isDirectory ? abs : path.dirname(abs));
    const inProject = found && (abs === found.root || abs.startsWith(found.root + path.sep));
    if (found && inProject) {
      let project = projects.get(found.root);
      if (!project) {
        project = await loadProjectAt(found, { builtinConnectors, codeChecker });
        projects.set(found.root, project);
      }
      const within = (f: string) => {
        const fa = path.join(found.root, f);
        return fa === abs || fa.startsWith(abs + path.sep) || (!isDirectory && fa === abs);
      };
      for (const d of [...project.diagnostics, ...(project.testDiagnostics ?? [])]) if (within(d.file)) diagnostics.push({ ...d, file: show(path.join(found.root, d.file)) });
      for (const f of project.files) if (within(f)) files.add(show(path.join(found.root, f)));
      continue;
    }
    const targets = isDirectory ? await definitionFilesUnder(abs) : [abs];
    for (const t of targets) {
      files.add(show(t));
      diagnostics.push(...(await checkStandaloneFile(t, show(t), builtinConnectors, codeChecker)));
    }
  }
  const unique = new Map(diagnostics.map((d) => [`${d.file}:${d.line}:${d.column}:${d.code}:${d.message}`, d]));
  return { diagnostics: sortDiagnostics([...unique.values()]), files: [...files] };
}

