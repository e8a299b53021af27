/**
 * `alloy dev` as a programmatic API: opens the event log under `.alloy/`, builds the
 * runtime server on the working tree's definitions, the engine executor, the stream
 * secret, and a debounced file watcher that reloads definitions (keeping the last good
 * ones while files are broken). The CLI command only prints what this reports.
 */
import { readdirSync, statSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { hasErrors, type Diagnostic } from '../core/diagnostics.js';
import type { LoadedProject } from '../core/project-types.js';
import { CONFIG_FILES } from '../core/project.js';
import { discardEventLog, openEventLog } from './event-log.js';
import { diffDefinitions, indexDefinitions, type RuntimeDefinitions } from './definitions.js';
import { createEngineExecutor, referencedSecretNames } from './engine-executor.js';
import type { WorkflowExecutor } from './executor.js';
import { createRuntimeServer, type RuntimeEvent, type RuntimeServer } from './runtime-server.js';
import { parseSchedule } from '../core/schedule.js';
import { createHttpClient } from '../connectors/http-client.js';
import type { HttpClient } from '../connectors/types.js';
import { createScheduler, scheduleTargets, type SchedulerEvent } from './scheduler.js';
import { createPoller, projectPollSource, pollTargets, type PollerEvent } from './poller.js';
import { eventLogCursors, realTimerClock, type TimerClock } from './time-ports.js';
import { CostLimiter } from '../serve/limiter.js';
import { realClock } from '../engine/clock.js';
import { loadOrCreateIngressSecret, loadOrCreateStreamSecret, loadProjectEnv, devLogFile, prepareDevLogFile, recordingsDir, removeDevInfo, writeDevInfo } from './dev-state.js';

export type DevEvent =
  | RuntimeEvent
  | { type: 'reload'; changes: string[]; files: string[]; version: string }
  | { type: 'reload-failed'; diagnostics: Diagnostic[]; project: LoadedProject; files: string[] }
  | SchedulerEvent
  | PollerEvent;

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
  /** The stream and ingress secrets when the caller already loaded them (else read or made here). */
  secrets?: { stream: string; ingress: string };
  /** Save every accepted delivery as a fixture: true for `.alloy/recordings`, or a folder. */
  record?: boolean | string;
  concurrency?: number;
  /** See RuntimeServerOptions.maxQueued. */
  maxQueued?: number;
  /** Oldest X-Shopify-Triggered-At accepted, in ms (config `dev.shopifyMaxAge`; default 24 h). */
  shopifyMaxAgeMs?: number;
  /** How long stopping waits for running executions before checkpointing them (default 5 s). */
  shutdownGraceMs?: number;
  watch?: boolean;
  debounceMs?: number;
  /** Replace fs.watch (tests see what is watched). */
  watchFn?: WatchFn;
  /** Apps faked for this run (`alloy dev --fake`), recorded in dev.json for `alloy emit`. */
  fakes?: string[];
  /** Replace the engine (tests). */
  executor?: WorkflowExecutor;
  /** Time and timers for schedules and polls (tests pass a manual clock). */
  timerClock?: TimerClock;
  /** HTTP client for polls (default the production client). */
  pollHttp?: HttpClient;
  onEvent?(event: DevEvent): void;
}

export interface DevRuntime {
  server: RuntimeServer;
  url: string;
  streamSecret: string;
  /** Signs events and custom webhooks sent through a tunnel (`alloy emit` uses it). */
  ingressSecret: string;
  /** Stream secret names (`secrets.X` in a stream) that fall back to the dev secret because X is unset. */
  streamSecretNames: string[];
  /** Diagnostics of the initial load (errors mean nothing is served until fixed). */
  initialDiagnostics: Diagnostic[];
  project: LoadedProject;
  env: Record<string, string | undefined>;
  recordDir?: string;
  /** Apps faked for this run. */
  fakes?: string[];
  /** Schedules and polls with their next run, for the banner. */
  timers(): { workflow: string; label: string; nextAt?: string }[];
  /** Runs a polled trigger now instead of waiting for its interval. */
  pollNow(workflow: string): Promise<void>;
  /** Re-reads the working tree now (the watcher calls this, debounced). */
  reload(files?: string[]): Promise<void>;
  close(): Promise<void>;
}

/** Paths that never trigger a reload: runtime state, dependencies, VCS. */
const IGNORED = /(^|[\\/])(\.alloy|node_modules|\.git|dist)([\\/]|$)/;
/** Files directly in the project root that definitions come from. */
const ROOT_FILES = new Set(['.env', ...CONFIG_FILES]);
const DEFINITION_FILE = /\.(ya?ml|json)$/;

export type WatchFn = (dir: string, options: { recursive: boolean }, listener: (event: string, filename: string | Buffer | null) => void) => FSWatcher;

export async function startDevRuntime(options: DevRuntimeOptions): Promise<DevRuntime> {
  const root = path.resolve(options.root);
  const emit = (e: DevEvent) => options.onEvent?.(e);
  const env = await loadProjectEnv(root, options.processEnv);
  const streamSecret = options.secrets?.stream ?? loadOrCreateStreamSecret(root).secret;
  const ingressSecret = options.secrets?.ingress ?? loadOrCreateIngressSecret(root).secret;

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

  // --fresh: the old file (checked not in use) is set aside, then a new one made 0600 as below.
  if (options.fresh) discardEventLog(devLogFile(root));
  // 0600 before SQLite opens it (its -wal and -shm files take the same mode); never a symlink.
  const log = openEventLog({ file: prepareDevLogFile(root) });

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
    maxQueued: options.maxQueued,
    shutdownGraceMs: options.shutdownGraceMs,
    secrets: serverSecrets,
    ingressSecret,
    shopifyMaxAgeMs: options.shopifyMaxAgeMs,
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
  writeDevInfo(root, { url, pid: process.pid, startedAt: new Date().toISOString(), ...(options.fakes?.length ? { fakes: options.fakes } : {}) });

  // Schedules and polls: cursors in the event log, each tick or item claimed through the
  // log's unique dedupe key (server.submit), so a restart neither repeats nor loses one.
  const timerClock = options.timerClock ?? realTimerClock;
  const cursors = eventLogCursors(log);
  const claim = (input: Parameters<RuntimeServer['submit']>[0]) => server.submit(input);
  const scheduler = createScheduler({ clock: timerClock, cursors, claim, onEvent: emit });
  const pollAbort = new AbortController();
  const poller = createPoller({
    clock: timerClock,
    cursors,
    claim,
    // Paced per (app, shop) on Shopify's cost reports, as serve paces its polls.
    source: projectPollSource({ project: () => goodProject, env, http: options.pollHttp ?? createHttpClient(), costs: new CostLimiter(realClock), signal: pollAbort.signal }),
    onEvent: emit,
  });
  const syncTimers = async (p: LoadedProject, d: RuntimeDefinitions) => {
    const workflows = [...d.workflows.values()].map((r) => ({ key: r.key, trigger: r.workflow.def.trigger }));
    await scheduler.setTargets(scheduleTargets(workflows, parseSchedule));
    // Polls run their first request in the background: a slow app must not hold up start or reload.
    void poller.setTargets(hasErrors(p.diagnostics) ? [] : pollTargets(p));
  };
  try {
    await syncTimers(project, defs);
  } catch (err) {
    emit({ type: 'error', message: `schedules could not start: ${(err as Error).message}` });
  }

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
  // The latest load, good or not: its config says which folders to watch.
  let latest = project;
  const reloadNow = async (files: string[]) => {
    const next = await options.loadProject();
    latest = next;
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
    await syncTimers(next, nextDefs);
    if (!resumed) {
      resumed = true;
      server.resumePending();
    }
    emit({ type: 'reload', changes, files, version: nextDefs.version });
  };

  let timer: NodeJS.Timeout | undefined;
  const changed = new Set<string>();
  const schedule = (rel: string) => {
    changed.add(rel);
    clearTimeout(timer);
    timer = setTimeout(() => {
      const files = [...changed].sort();
      changed.clear();
      void reload(files).then(() => watchers?.sync());
    }, options.debounceMs ?? 150);
  };
  const watchers =
    options.watch !== false
      ? createDefinitionWatchers({
          root,
          dirs: () => definitionDirs(root, latest),
          watch: options.watchFn ?? watch,
          onChange: schedule,
          onError: (message) => emit({ type: 'error', message }),
        })
      : undefined;
  watchers?.sync();

  let closing: Promise<void> | undefined;
  return {
    server,
    url,
    streamSecret,
    ingressSecret,
    get streamSecretNames() {
      return fallbacks;
    },
    initialDiagnostics,
    timers: () => [...scheduler.next(), ...poller.next()].map(({ workflow, label, nextAt }) => ({ workflow, label, ...(nextAt ? { nextAt } : {}) })),
    pollNow: (workflow) => poller.runNow(workflow),
    get project() {
      return project;
    },
    env,
    recordDir,
    fakes: options.fakes?.length ? options.fakes : undefined,
    reload,
    close() {
      if (closing) return closing;
      closing = (async () => {
        clearTimeout(timer);
        scheduler.close();
        poller.close();
        pollAbort.abort();
        watchers?.close();
        await reloading.catch(() => {});
        await server.close();
        removeDevInfo(root, process.pid);
      })();
      return closing;
    },
  };
}

/** The folders definitions are read from, as configured (same resolution as the project loader). */
export function definitionDirs(root: string, project: LoadedProject): string[] {
  return [path.join(root, project.config.integrationsDir ?? 'integrations'), path.join(root, project.config.connectorsDir ?? 'connectors')];
}

interface DefinitionWatchersOptions {
  root: string;
  dirs(): string[];
  watch: WatchFn;
  /** A definition file changed (path relative to root, forward slashes). */
  onChange(rel: string): void;
  onError(message: string): void;
}

/** A definition folder and every folder below it (not node_modules, .git, .alloy, dist). */
function definitionFolders(dir: string): string[] {
  const out = [dir];
  let entries: import('node:fs').Dirent[] = [];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    if (e.isDirectory() && !IGNORED.test(e.name)) out.push(...definitionFolders(path.join(dir, e.name)));
  }
  return out;
}

/**
 * Watches only what definitions come from: the root (not recursive: the config file and
 * .env live there), and the integrations and connectors folders (each of their folders, they
 * are small). A recursive watch of the root would also put an inotify watch on every folder of
 * node_modules, .git and .alloy (thousands, up to fs.inotify.max_user_watches). A folder
 * that does not exist yet is waited for by watching its nearest existing parent.
 */
function createDefinitionWatchers(o: DefinitionWatchersOptions) {
  const active = new Map<string, { watcher: FSWatcher; id: string }>();
  const reported = new Set<string>();
  let closed = false;
  let started = false;
  const relOf = (abs: string) => path.relative(o.root, abs).split(path.sep).join('/') || '.';
  const statDir = (dir: string) => {
    try {
      const st = statSync(dir);
      return st.isDirectory() ? st : undefined;
    } catch {
      return undefined;
    }
  };
  const report = (key: string, dir: string, err: unknown) => {
    const message = `file watcher on ${relOf(dir)} failed: ${(err as Error).message}; changes there may not reload until alloy dev restarts (on Linux, raise fs.inotify.max_user_watches if it says ENOSPC)`;
    if (!reported.has(key + message)) o.onError(message);
    reported.add(key + message);
  };
  /** Starts (or restarts, when the folder was replaced) one watcher; true when a new one started. */
  const open = (dir: string, recursive: boolean, listener: (filename: string | undefined) => void, wanted: Set<string>): boolean => {
    const key = `${recursive ? 'r' : 'n'}:${dir}`;
    wanted.add(key);
    const st = statDir(dir);
    const current = active.get(key);
    // Same inode and birth time: the same folder (a folder deleted and made again needs a new watcher).
    const id = st ? `${st.ino}:${st.birthtimeMs}` : '';
    if (current && st && current.id === id) return false;
    current?.watcher.close();
    active.delete(key);
    if (!st) return false;
    try {
      const watcher = o.watch(dir, { recursive }, (_event, filename) => {
        if (!closed) listener(filename ? filename.toString() : undefined);
      });
      // Without a listener an 'error' (e.g. the folder vanished, EMFILE) would crash alloy dev: report it and keep serving.
      watcher.on('error', (err) => {
        watcher.close();
        if (active.get(key)?.watcher === watcher) active.delete(key);
        if (!closed) report(key, dir, err);
      });
      active.set(key, { watcher, id });
      return true;
    } catch (err) {
      report(key, dir, err);
      return false;
    }
  };
  const sync = () => {
    if (closed) return;
    const wanted = new Set<string>();
    const parentListener = (dir: string) => (filename: string | undefined) => {
      if (dir === o.root && filename && ROOT_FILES.has(filename)) o.onChange(filename);
      // A watched folder may have appeared, moved or been replaced.
      sync();
    };
    open(o.root, false, parentListener(o.root), wanted);
    for (const dir of new Set(o.dirs())) {
      if (statDir(dir)) {
        // One plain watcher per folder, not fs.watch(recursive): Node 20's recursive watcher on
        // Linux watches files by inode and loses a file replaced by rename, which is how vim,
        // `sed -i` and VS Code save (write a temp file, rename it over). A folder's own watcher
        // sees every name in it, whatever the inode.
        for (const sub of definitionFolders(dir)) {
          const fresh = open(
            sub,
            false,
            (filename) => {
              // A folder made, moved or removed below: start or stop its watcher.
              sync();
              if (!filename) return;
              const rel = relOf(path.join(sub, filename));
              if (IGNORED.test(rel) || !DEFINITION_FILE.test(rel)) return;
              o.onChange(rel);
            },
            wanted,
          );
          // Files written before this watcher started are read by a reload now.
          if (fresh && started) o.onChange(relOf(sub));
        }
      } else {
        let parent = path.dirname(dir);
        while (parent !== path.dirname(parent) && !statDir(parent)) parent = path.dirname(parent);
        open(parent, false, parentListener(parent), wanted);
      }
    }
    for (const [key, { watcher }] of active) {
      if (!wanted.has(key)) {
        watcher.close();
        active.delete(key);
      }
    }
    started = true;
  };
  return {
    sync,
    close() {
      closed = true;
      for (const { watcher } of active.values()) watcher.close();
      active.clear();
    },
  };
}
