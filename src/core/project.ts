/**
 * Loading a project: the config (found with cosmiconfig from a directory upward), every
 * integration, workflow and user connector, each parsed with positions, schema-checked and
 * meaning-checked. User mistakes come back as diagnostics; only "there is no project here"
 * throws.
 *
 * Layout (docs/file-format.md):
 *   alloy.config.yaml
 *   integrations/<name>/integration.yaml
 *   integrations/<name>/workflows/<workflow>.yaml
 *   integrations/<name>/tests/<anything>.test.yaml
 *   connectors/<name>.yaml
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { checkWorkflow, workflowHasCode, type CodeChecker, type ConnectorCatalog } from './check-workflow.js';
import { mapLimit } from './map-limit.js';
import { closest, makeDiagnostic, sortDiagnostics, type Diagnostic } from './diagnostics.js';
import { compileValue, ExpressionSyntaxError, TemplateSyntaxError } from './expressions.js';
import type { ConnectorManifest, IntegrationDef, ProjectConfig, WorkflowDef } from './model.js';
import type { LoadedConnector, LoadedIntegration, LoadedProject, LoadedTestFile, LoadedWorkflow } from './project-types.js';
import { checkSchema, getUserAjv, type SchemaName } from './schema-check.js';
import { lazySource, MAX_DEFINITION_BYTES, parseFastPath, parseSource, parseSourceLazily, rangeAt, readSourceBytes, readSourceFile, type SourceFile } from './source-file.js';
import { sha256, TestFileCache } from './test-file-cache.js';
import { findConfig, noProjectError, type FoundConfig } from './find-config.js';

/** Test files hold events and answers: allowed to be larger than definitions (and `test --record` writes none larger). */
export const MAX_TEST_FILE_BYTES = 8 * MAX_DEFINITION_BYTES;

// Finding the project lives apart (light to import for the client commands); re-exported here.
export { CONFIG_FILES, findConfig, noProjectError, type FoundConfig } from './find-config.js';

const DEFINITION_EXTENSIONS = ['.yaml', '.yml', '.json'];
const READ_CONCURRENCY = 16;


export interface LoadProjectOptions {
  /** Built-in connector manifests; the CLI passes src/connectors' list. */
  builtinConnectors: readonly ConnectorManifest[];
  /**
   * Loads the syntax checker of `code:` steps (QuickJS, heavy): called only when a workflow
   * holds a code step. Without it, code steps are not syntax-checked.
   */
  codeChecker?: () => Promise<CodeChecker>;
  /**
   * Keep parsed test files in `.alloy/cache/` (core/test-file-cache.ts), so an unchanged
   * suite is not parsed again. The CLI turns it on; off by default for the library.
   */
  testFileCache?: boolean;
}

function rel(root: string, abs: string): string {
  return path.relative(root, abs).split(path.sep).join('/') || '.';
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch {
    return [];
  }
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

function isDefinitionFile(name: string): boolean {
  return DEFINITION_EXTENSIONS.includes(path.extname(name)) && !name.startsWith('.');
}

export function catalogOf(builtins: readonly ConnectorManifest[], user: readonly LoadedConnector[]): ConnectorCatalog {
  const map = new Map<string, ConnectorManifest>();
  for (const m of builtins) map.set(m.name, m);
  for (const c of user) if (!map.has(c.def.name)) map.set(c.def.name, c.def);
  return map;
}

/** Loads and checks the project found from `cwd` upward. */
export async function loadProject(cwd: string, options: LoadProjectOptions): Promise<LoadedProject> {
  const found = await findConfig(cwd);
  if (!found) throw noProjectError(cwd);
  return loadProjectAt(found, options);
}

export async function loadProjectAt(found: FoundConfig, options: LoadProjectOptions): Promise<LoadedProject> {
  const { root } = found;
  const diagnostics: Diagnostic[] = [];
  const { config, configFile } = await loadConfig(found, diagnostics);
  const files = [configFile];

  const connectors = await loadConnectors(root, path.join(root, config.connectorsDir ?? 'connectors'), options, diagnostics);
  const catalog = catalogOf(options.builtinConnectors, connectors);

  let checker: Promise<CodeChecker | undefined> | undefined;
  const codeCheckerOnce = () => (checker ??= options.codeChecker ? options.codeChecker() : Promise.resolve(undefined));
  const integrations: LoadedIntegration[] = [];
  const testDiagnostics: Diagnostic[] = [];
  let cache: TestFileCache | undefined;
  const cacheOnce = options.testFileCache ? () => (cache ??= TestFileCache.open(root)) : undefined;
  const integrationsDir = path.join(root, config.integrationsDir ?? 'integrations');
  for (const name of await listDir(integrationsDir)) {
    const dir = path.join(integrationsDir, name);
    if (!(await isDir(dir))) continue;
    const loaded = await loadIntegration(root, dir, name, catalog, diagnostics, testDiagnostics, codeCheckerOnce, cacheOnce);
    if (loaded) integrations.push(loaded);
  }
  cache?.save();
  if (integrations.length === 0 && diagnostics.length === 0) {
    diagnostics.push(
      makeDiagnostic(configFile ?? '.', undefined, undefined, 'warning', 'W_NO_INTEGRATIONS', `no integrations under ${rel(root, integrationsDir)}/`, 'add integrations/<name>/integration.yaml, or run `alloy init` in a new folder'),
    );
  }
  files.push(...connectors.map((c) => c.file));
  for (const i of integrations) files.push(i.file, ...i.workflows.map((w) => w.file), ...(i.tests ?? []).map((t) => t.file));
  for (const d of diagnostics) if (!files.includes(d.file)) files.push(d.file);
  return { root, configFile, config, integrations, connectors, files, diagnostics: sortDiagnostics(diagnostics), testDiagnostics: sortDiagnostics(testDiagnostics) };
}

async function loadConfig(found: FoundConfig, diagnostics: Diagnostic[]): Promise<{ config: ProjectConfig; configFile: string }> {
  const configFile = rel(found.root, found.filepath);
  const base = path.basename(found.filepath);
  const ext = path.extname(base);
  let value: unknown = found.config;
  if (ext === '.js' || ext === '.mjs') {
    // Code configs have no source positions: diagnostics point at line 1.
    const source = parseSource(configFile, JSON.stringify(value ?? {}));
    source.doc = undefined;
    diagnostics.push(...checkSchema(source, 'config'));
  } else {
    const source = await readSourceFile(found.filepath, configFile);
    diagnostics.push(...source.diagnostics);
    if (source.value !== undefined) {
      if (base === 'package.json') {
        value = (source.value as Record<string, unknown>).alloy;
        diagnostics.push(...checkSchemaAt(source, 'config', '/alloy', value));
      } else {
        value = source.value;
        diagnostics.push(...checkSchema(source, 'config'));
      }
    }
  }
  const config = (value && typeof value === 'object' && !Array.isArray(value) ? value : {}) as ProjectConfig;
  return { config: { ...config, name: typeof config.name === 'string' ? config.name : path.basename(found.root) }, configFile };
}

function checkSchemaAt(source: SourceFile, name: SchemaName, pointer: string, value: unknown): Diagnostic[] {
  return checkSchema({ ...source, value }, name, pointer);
}

async function loadIntegration(
  root: string,
  dir: string,
  name: string,
  catalog: ConnectorCatalog,
  diagnostics: Diagnostic[],
  testDiagnostics: Diagnostic[],
  codeChecker: () => Promise<CodeChecker | undefined>,
  testFileCache?: () => TestFileCache,
): Promise<LoadedIntegration | undefined> {
  const files = await listDir(dir);
  const integrationFile = files.find((f) => f === 'integration.yaml' || f === 'integration.yml');
  if (!integrationFile) {
    diagnostics.push(
      makeDiagnostic(rel(root, dir), undefined, undefined, 'error', 'E_INTEGRATION_FILE_MISSING', `integration folder "${name}" has no integration.yaml`, `add ${rel(root, path.join(dir, 'integration.yaml'))} with apiVersion, kind: Integration, name and app`),
    );
    return undefined;
  }
  const abs = path.join(dir, integrationFile);
  const source = await readSourceFile(abs, rel(root, abs));
  diagnostics.push(...source.diagnostics);
  if (source.value === undefined) return undefined;
  const schemaDiagnostics = checkSchema(source, 'integration');
  diagnostics.push(...schemaDiagnostics);
  const def = source.value as IntegrationDef;
  if (def && typeof def === 'object') {
    if (typeof def.name === 'string' && def.name !== name) {
      diagnostics.push(
        makeDiagnostic(source.file, source.index, rangeAt(source, '/name'), 'warning', 'W_INTEGRATION_NAME', `integration "${def.name}" lives in folder "${name}"`, `rename the folder or set name: ${name}`),
      );
    }
    if (typeof def.app === 'string' && !catalog.has(def.app)) {
      const guess = closest(def.app, catalog.keys());
      diagnostics.push(
        makeDiagnostic(source.file, source.index, rangeAt(source, '/app'), 'error', 'E_UNKNOWN_CONNECTOR', `unknown app "${def.app}"`, guess ? `did you mean "${guess}"?` : `known apps: ${[...catalog.keys()].join(', ')}`),
      );
    }
    (def.connectors ?? []).forEach((c, i) => {
      if (typeof c === 'string' && !catalog.has(c)) {
        diagnostics.push(
          makeDiagnostic(source.file, source.index, rangeAt(source, `/connectors/${i}`), 'error', 'E_UNKNOWN_CONNECTOR', `unknown connector "${c}"`, `add connectors/${c}.yaml`),
        );
      }
    });
  }
  const integrationName = typeof def?.name === 'string' ? def.name : name;
  const workflows: LoadedWorkflow[] = [];
  const seen = new Map<string, string>();
  const wfDir = path.join(dir, 'workflows');
  const wfFiles = (await listDir(wfDir)).filter(isDefinitionFile);
  // Read concurrently (a few at a time), check in order: reading one by one left the
  // process waiting on the file system for most of a large project's validation.
  const sources = await mapLimit(wfFiles, READ_CONCURRENCY, (f) => readSourceFile(path.join(wfDir, f), rel(root, path.join(wfDir, f))));
  for (const [i, f] of wfFiles.entries()) {
    const wf = sources[i];
    diagnostics.push(...wf.diagnostics);
    if (wf.value === undefined) continue;
    diagnostics.push(...checkSchema(wf, 'workflow'));
    const checkCode = workflowHasCode(wf.value) ? await codeChecker() : undefined;
    diagnostics.push(...checkWorkflow(wf, { integration: def, catalog, checkCode }));
    const wdef = wf.value as WorkflowDef;
    if (!wdef || typeof wdef !== 'object' || typeof wdef.name !== 'string') continue;
    const first = seen.get(wdef.name);
    if (first) {
      diagnostics.push(
        makeDiagnostic(wf.file, wf.index, rangeAt(wf, '/name'), 'error', 'E_WORKFLOW_DUPLICATE_NAME', `workflow name "${wdef.name}" is already used by ${first}`, 'workflow names must be unique within an integration'),
      );
      continue;
    }
    seen.set(wdef.name, wf.file);
    const stem = path.basename(f, path.extname(f));
    if (stem !== wdef.name) {
      diagnostics.push(
        makeDiagnostic(wf.file, wf.index, rangeAt(wf, '/name'), 'warning', 'W_WORKFLOW_NAME', `workflow "${wdef.name}" is in file ${f}`, `rename the file to ${wdef.name}${path.extname(f)}`),
      );
    }
    workflows.push({ integration: integrationName, name: wdef.name, file: wf.file, def: wdef });
  }
  const tests = await loadTestFiles(root, path.join(dir, 'tests'), workflows, testDiagnostics, testFileCache);
  return { name: integrationName, dir: rel(root, dir), file: source.file, def, workflows, tests };
}

/** `tests/*.test.yaml`: schema-checked, and the workflow each names must exist here. */
async function loadTestFiles(
  root: string,
  testsDir: string,
  workflows: LoadedWorkflow[],
  diagnostics: Diagnostic[],
  testFileCache?: () => TestFileCache,
): Promise<LoadedTestFile[]> {
  const names = (await listDir(testsDir)).filter((f) => isTestFile(f));
  const cache = names.length && testFileCache ? testFileCache() : undefined;
  // Test files grow large (recorded and generated suites): their positions are parsed only
  // when needed, and with the cache an unchanged file is neither parsed nor decoded.
  const read = async (f: string): Promise<SourceFile> => {
    const file = rel(root, path.join(testsDir, f));
    const bytes = await readSourceBytes(path.join(testsDir, f), file, MAX_TEST_FILE_BYTES);
    if (!Buffer.isBuffer(bytes)) return bytes;
    if (!cache) return parseSourceLazily(file, bytes.toString('utf8'));
    // The sha256 of the bytes is that of the text: they are checked UTF-8.
    const hash = sha256(bytes);
    const cached = cache.get(file, hash);
    if (cached !== undefined) return lazySource(file, () => bytes.toString('utf8'), cached);
    const text = bytes.toString('utf8');
    const fast = parseFastPath(file, text);
    if (!fast) return parseSource(file, text);
    cache.put(file, hash, fast.value);
    return fast;
  };
  const sources = await mapLimit(names, READ_CONCURRENCY, read);
  return sources.map((source) => {
    const found = [...source.diagnostics];
    if (source.value !== undefined) found.push(...checkTestSource(source, workflows.map((w) => w.name)));
    diagnostics.push(...found);
    return { file: source.file, source, valid: source.value !== undefined && !found.some((d) => d.severity === 'error') };
  });
}

/** A test file's name: `<anything>.test.yaml` (or .yml/.json). */
export function isTestFile(name: string): boolean {
  return isDefinitionFile(name) && /\.test\.(ya?ml|json)$/.test(name);
}

/** Schema checks of a test file, and (given the integration's workflows) that its workflow exists. */
export function checkTestSource(source: SourceFile, workflowNames?: readonly string[]): Diagnostic[] {
  const out = checkSchema(source, 'test');
  const value = source.value as { workflow?: unknown } | undefined;
  if (out.length === 0 && workflowNames && typeof value?.workflow === 'string' && !workflowNames.includes(value.workflow)) {
    const guess = closest(value.workflow, workflowNames);
    out.push(
      makeDiagnostic(source.file, source.index, rangeAt(source, '/workflow'), 'error', 'E_TEST_UNKNOWN_WORKFLOW', `no workflow "${value.workflow}" in this integration`, guess ? `did you mean "${guess}"?` : `workflows: ${workflowNames.join(', ') || '(none)'}`),
    );
  }
  return out;
}

async function loadConnectors(
  root: string,
  dir: string,
  options: LoadProjectOptions,
  diagnostics: Diagnostic[],
): Promise<LoadedConnector[]> {
  const out: LoadedConnector[] = [];
  const builtinNames = new Set(options.builtinConnectors.map((c) => c.name));
  for (const f of (await listDir(dir)).filter(isDefinitionFile)) {
    const abs = path.join(dir, f);
    const source = await readSourceFile(abs, rel(root, abs));
    const found = checkConnectorSource(source);
    diagnostics.push(...found);
    if (source.value === undefined || found.some((d) => d.severity === 'error')) continue;
    const def = source.value as ConnectorManifest;
    if (builtinNames.has(def.name) || out.some((c) => c.def.name === def.name)) {
      diagnostics.push(
        makeDiagnostic(source.file, source.index, rangeAt(source, '/name'), 'error', 'E_CONNECTOR_NAME_TAKEN', `a connector named "${def.name}" already exists`, 'choose another name'),
      );
      continue;
    }
    out.push({ file: source.file, def });
  }
  return out;
}

/** Schema plus meaning checks for one connector manifest. */
export function checkConnectorSource(source: SourceFile): Diagnostic[] {
  const out = [...source.diagnostics];
  if (source.value === undefined) return out;
  out.push(...checkSchema(source, 'connector'));
  const def = source.value as ConnectorManifest;
  if (!def || typeof def !== 'object') return out;
  for (const [name, action] of Object.entries(def.actions ?? {})) {
    if (action?.input && typeof action.input === 'object') {
      try {
        getUserAjv().compile(action.input);
      } catch (err) {
        out.push(
          makeDiagnostic(source.file, source.index, rangeAt(source, `/actions/${name}/input`), 'error', 'E_CONNECTOR_INPUT_SCHEMA', `input schema of action "${name}" is not a valid JSON Schema: ${(err as Error).message}`),
        );
      }
    }
    try {
      compileValue(action?.request ?? {});
      compileValue(action?.output ?? null);
    } catch (err) {
      if (err instanceof TemplateSyntaxError || err instanceof ExpressionSyntaxError) {
        out.push(makeDiagnostic(source.file, source.index, rangeAt(source, `/actions/${name}`), 'error', 'E_EXPRESSION_SYNTAX', `action "${name}": ${err.message}`));
      } else throw err;
    }
  }
  return out;
}

const KINDS: Record<string, SchemaName> = { Workflow: 'workflow', Integration: 'integration', Connector: 'connector', Project: 'config', Test: 'test' };

/**
 * Checks one file outside a project (or given explicitly): the kind comes from its `kind`
 * key, or from the file name for configs. Cross-file checks need a project and are skipped.
 */
export async function checkStandaloneFile(
  absPath: string,
  file: string,
  builtins: readonly ConnectorManifest[],
  codeChecker?: () => Promise<CodeChecker>,
): Promise<Diagnostic[]> {
  const source = await readSourceFile(absPath, file);
  if (source.value === undefined) return source.diagnostics;
  const value = source.value as Record<string, unknown>;
  const base = path.basename(absPath);
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    return [
      makeDiagnostic(file, source.index, [0, 1], 'error', 'E_SCHEMA_TYPE', `the file must be a mapping of keys to values, got ${Array.isArray(value) ? 'a list' : typeof value}`, 'start with apiVersion: alloy/v1 and kind: Workflow (or Integration, Connector)'),
    ];
  }
  let kind: SchemaName | undefined;
  if (base.startsWith('alloy.config.') || base.startsWith('.alloyrc')) kind = 'config';
  else if (value && typeof value === 'object' && !Array.isArray(value) && typeof value.kind === 'string') kind = KINDS[value.kind];
  if (!kind) {
    const given = value && typeof value === 'object' && !Array.isArray(value) ? value.kind : undefined;
    const guess = typeof given === 'string' ? closest(given, Object.keys(KINDS)) : undefined;
    return [
      makeDiagnostic(
        file,
        source.index,
        given === undefined ? [0, 1] : rangeAt(source, '/kind'),
        'error',
        'E_UNKNOWN_KIND',
        given === undefined ? 'file has no "kind"' : `unknown kind ${JSON.stringify(given)}`,
        guess ? `did you mean "${guess}"?` : `set kind: to one of ${Object.keys(KINDS).join(', ')}`,
      ),
    ];
  }
  if (kind === 'connector') return checkConnectorSource(source);
  if (kind === 'test') return sortDiagnostics(checkTestSource(source));
  const out = checkSchema(source, kind);
  if (kind === 'workflow') {
    const checkCode = codeChecker && workflowHasCode(source.value) ? await codeChecker() : undefined;
    out.push(...checkWorkflow(source, { catalog: catalogOf(builtins, []), checkCode }));
  }
  return sortDiagnostics(out);
}

/** Every definition file below a folder (for validating a folder that is not a project). */
export async function definitionFilesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of await listDir(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const abs = path.join(dir, name);
    if (await isDir(abs)) out.push(...(await definitionFilesUnder(abs)));
    else if (isDefinitionFile(name)) out.push(abs);
  }
  return out;
}
