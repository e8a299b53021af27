/**
 * `alloy dev` as a programmatic API: opens the event log under `.alloy/`, builds the
 * runtime server on the working tree's definitions, the engine executor, the stream
 * secret, and a debounced file watcher that reloads definitions (keeping the last good
 * ones while files are broken). The CLI command only prints what this reports.
 */
import { watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { hasErrors, type Diagnostic } from '../core/diagnostics.js';
import type { LoadedProject } from '../core/project-types.js';
import { openEventLog } from './event-log.js';
import { diffDefinitions, indexDefinitions, type RuntimeDefinitions } from './definitions.js';
import { createEngineExecutor, referencedSecretNames } from './engine-executor.js';
import type { WorkflowExecutor } from './executor.js';
import { createRuntimeServer, type RuntimeEvent, type RuntimeServer } from './runtime-server.js';
import { devLogFile, loadOrCreateStreamSecret, loadProjectEnv, recordingsDir, removeDevInfo, writeDevInfo } from './dev-state.js';

export type DevEvent =
  | RuntimeEvent
  | { type: 'reload'; changes: string[]; files: string[]; version: string }
  | { type: 'reload-failed'; diagnostics: Diagnostic[]; project: LoadedProject; files: string[] };

export interface DevRuntimeOptions {
  root: string;
  /** Loads the working tree without throwing for user mistakes (diagnostics in the result). */
  loadProject(): Promise<LoadedProject>;
  /** The first load, when the caller already did it (saves loading twice). */
  initialProject?: LoadedProject;
  processEnv: NodeJS.ProcessEnv;
  host?: string;
  port?: number;
  /** Forget the event log's history before starting. */
  fresh?: boolean;
  /** Save every accepted delivery as a fixture: true for `.alloy/recordings`, or a folder. */
  record?: boolean | string;
  concurrency?: number;
  /** How long stopping waits for running executions before checkpointing them (default 5 s). */
  shutdownGraceMs?: number;
  watch?: boolean;
  debounceMs?: number;
  /** Replace the engine (tests). */
  executor?: WorkflowExecutor;
  onEvent?(event: DevEvent): void;
}

export interface DevRuntime {
  server: RuntimeServer;
  url: string;
  streamSecret: string;
  /** Stream secret names (`secrets.X` in a stream) that fall back to the dev secret because X is unset. */
  streamSecretNames: string[];
  /** Diagnostics of the initial load (errors mean nothing is served until fixed). */
  initialDiagnostics: Diagnostic[];
  project: LoadedProject;
  env: Record<string, string | undefined>;
  recordDir?: string;
  /** Re-reads the working tree now (the watcher calls this, debounced). */
  reload(files?: string[]): Promise<void>;
  close(): Promise<void>;
}

/** Paths that never trigger a reload: runtime state, dependencies, VCS. */
const IGNORED = /(^|[\\/])(\.alloy|node_modules|\.git|dist)([\\/]|$)/;

export async function startDevRuntime(options: DevRuntimeOptions): Promise<DevRuntime> {
  const root = path.resolve(options.root);
  const emit = (e: DevEvent) => options.onEvent?.(e);
  const env = await loadProjectEnv(root, options.processEnv);
  const { secret: streamSecret } = loadOrCreateStreamSecret(root);

  let project = options.initialProject ?? (await options.loadProject());
  const initialDiagnostics = project.diagnostics;
  // With errors at start there is no last good version yet: serve nothing until they are fixed.
  let defs: RuntimeDefinitions = indexDefinitions(hasErrors(project.diagnostics) ? { ...project, integrations: [] } : project);
  let goodProject = project;

  const secretsFor = (p: LoadedProject) => {
    const names = referencedSecretNames(p);
    const secrets: Record<string, string> = {};
    const fallbacks: string[] = [];
    for (const name of names.all) if (env[name]) secrets[name] = env[name]!;
    for (const name of names.stream) {
      if (!env[name]) {
        secrets[name] = streamSecret;
        fallbacks.push(name);
      }
    }
    return { secrets, fallbacks };
  };
  let { secrets, fallbacks } = secretsFor(project);
  // Live objects: a reload (of .env too) updates them in place for the server and the engine.
  const serverSecrets: Record<string, string | undefined> = { ...env, ...secrets };
  const replaceContents = (target: Record<string, string | undefined>, source: Record<string, string | undefined>) => {
    for (const k of Object.keys(target)) delete target[k];
    Object.assign(target, source);
  };

  const log = openEventLog({ file: devLogFile(root) });
  try {
    if (options.fresh) await log.clear();
  } catch (err) {
    log.close();
    throw err;
  }

  const baseExecutor =
    options.executor ??
    createEngineExecutor({
      project: () => goodProject,
      env,
      get secrets() {
        return secrets;
      },
    } as Parameters<typeof createEngineExecutor>[0]);

  const recordDir = options.record ? (typeof options.record === 'string' ? path.resolve(root, options.record) : recordingsDir(root)) : undefined;
  const server = createRuntimeServer({
    log,
    definitions: defs,
    executor: baseExecutor,
    host: options.host,
    port: options.port,
    concurrency: options.concurrency,
    shutdownGraceMs: options.shutdownGraceMs,
    secrets: serverSecrets,
    recordDir,
    // Broken files at start: unfinished executions wait for a good reload instead of failing as "workflow not found".
    resumeOnListen: !hasErrors(project.diagnostics),
    onEvent: emit,
  });
  let resumed = !hasErrors(project.diagnostics);

  let url: string;
  try {
    url = await server.listen();
  } catch (err) {
    await server.close();
    throw err;
  }
  writeDevInfo(root, { url, pid: process.pid, startedAt: new Date().toISOString() });

  let reloading: Promise<void> = Promise.resolve();
  const reload = (files: string[] = []) => {
    reloading = reloading.then(async () => {
      try {
        await reloadNow(files);
      } catch (err) {
        // E.g. the config file was deleted: say so and keep serving; the next change retries.
        emit({ type: 'error', message: `reload failed: ${(err as Error).message}` });
      }
    });
    return reloading;
  };
  let lastFailure = '';
  const reloadNow = async (files: string[]) => {
    const next = await options.loadProject();
    if (files.some((f) => f === '.env' || f.endsWith('/.env'))) {
      replaceContents(env, await loadProjectEnv(root, options.processEnv));
      ({ secrets, fallbacks } = secretsFor(goodProject));
      replaceContents(serverSecrets, { ...env, ...secrets });
    }
    if (hasErrors(next.diagnostics)) {
      // Editors often write a file twice; the same errors are reported once.
      const key = JSON.stringify(next.diagnostics);
      if (key !== lastFailure) emit({ type: 'reload-failed', diagnostics: next.diagnostics, project: next, files });
      lastFailure = key;
      return;
    }
    lastFailure = '';
    const nextDefs = indexDefinitions(next);
    const changes = diffDefinitions(defs, nextDefs);
    project = next;
    goodProject = next;
    defs = nextDefs;
    ({ secrets, fallbacks } = secretsFor(next));
    replaceContents(serverSecrets, { ...env, ...secrets });
    server.setDefinitions(nextDefs);
    if (!resumed) {
      resumed = true;
      server.resumePending();
    }
    emit({ type: 'reload', changes, files, version: nextDefs.version });
  };

  let watcher: FSWatcher | undefined;
  let timer: NodeJS.Timeout | undefined;
  const changed = new Set<string>();
  if (options.watch !== false) {
    try {
      watcher = watch(root, { recursive: true }, (_type, filename) => {
        if (!filename) return;
        const rel = filename.toString();
        if (IGNORED.test(rel)) return;
        if (!/\.(ya?ml|json|env)$|(^|[\\/])\.alloyrc/.test(rel) && !rel.endsWith('.env')) return;
        changed.add(rel.split(path.sep).join('/'));
        clearTimeout(timer);
        timer = setTimeout(() => {
          const files = [...changed].sort();
          changed.clear();
          void reload(files);
        }, options.debounceMs ?? 150);
      });
    } catch {
      watcher = undefined;
    }
  }

  let closing: Promise<void> | undefined;
  return {
    server,
    url,
    streamSecret,
    get streamSecretNames() {
      return fallbacks;
    },
    initialDiagnostics,
    get project() {
      return project;
    },
    env,
    recordDir,
    reload,
    close() {
      if (closing) return closing;
      closing = (async () => {
        clearTimeout(timer);
        watcher?.close();
        await reloading.catch(() => {});
        await server.close();
        removeDevInfo(root, process.pid);
      })();
      return closing;
    },
  };
}
