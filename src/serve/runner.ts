/**
 * Runs executions for `alloy serve` on the engine (src/engine): each execution on the
 * integration@version it recorded when created (so an upgrade never changes one in flight),
 * with the installation's credentials, config and the app settings, checkpointing every
 * step into the state before the next starts (a resumed execution starts from its last
 * checkpoint, so finished steps are not repeated). Which process runs what, and how many at
 * once, is the execution queue's (queue/): in-process over SQLite, pg-boss over PostgreSQL.
 * Calls to an app are paced per (app, account) by the cost limiter.
 */
import { compileWorkflow, WorkflowCompileError, type CompiledWorkflow } from '../engine/compile.js';
import { executeWorkflow } from '../engine/execute.js';
import { realClock } from '../engine/clock.js';
import type { EngineDeps, ExecutionRecord, StepRecord } from '../engine/types.js';
import { hasSideEffects, isCallInFlight, isFinalRecord } from '../engine/durability.js';
import type { AppSettings, IntegrationDef, WorkflowDef } from '../core/model.js';
import { createConnectorRegistry } from '../connectors/registry.js';
import { createHttpClient, followSignal } from '../connectors/http-client.js';
import type { HttpClient } from '../connectors/types.js';
import { AlloyError, MissingSecretError } from '../errors.js';
import { referencedSecretNames } from '../server/engine-executor.js';
import type { LoadedProject } from '../core/project-types.js';
import type { DefinitionSource } from './definitions.js';
import { CostLimiter, pacedCall } from './limiter.js';
import type { Connections } from './connections.js';
import { openConfig } from './config-values.js';
import type { Keyring } from './crypto.js';
import type { ExecutionRow, IngestInput, IngestResult, InstallationRecord, ServeState } from './state/types.js';
import { createLocalQueue } from './queue/local-queue.js';
import { DEFAULT_LIMITS, type EnqueueOptions, type ExecutionQueue, type PreparedExecution, type QueueLimits } from './queue/types.js';

export interface RunnerOptions {
  state: ServeState;
  source: DefinitionSource;
  connections: Connections;
  keyring: Keyring;
  settings: Record<string, AppSettings>;
  env: Record<string, string | undefined>;
  http?: HttpClient;
  /** The process's per-(app, shop) cost limiter, shared with the polls; default a new one. */
  costs?: CostLimiter;
  /** Executions running at once in this process. Default 16. */
  concurrency?: number;
  /** Executions of one installation running at once. Default 4. */
  perInstallation?: number;
  /** Executions calling one shop (app account) running at once. Default 4. */
  perShop?: number;
  /** Where executions are queued; default the in-process queue (SQLite, one process). */
  queue?: (state: ServeState, limits: QueueLimits) => ExecutionQueue;
  /** Take and run executions in this process (roles `worker`, `all`); false only enqueues (role `api`). Default true. */
  work?: boolean;
  now?: () => number;
  onFinished?(row: ExecutionRow, record: ExecutionRecord): void;
  onError?(id: string, err: unknown): void;
}

export interface Runner {
  /** Stores new executions with their dedupe key and queues them (see ExecutionQueue.ingest). */
  ingest(input: IngestInput, options?: EnqueueOptions): Promise<IngestResult>;
  /** Starts running executions, from what was unfinished or queued before. */
  start(): Promise<void>;
  /** Aborts a running execution wherever it runs (its status is already `cancelled` in the state). */
  abort(id: string): void;
  idle(): Promise<void>;
  stop(graceMs?: number): Promise<void>;
}

const silentLogger = { debug() {}, info() {}, warn() {} };
/** Deaths of a worker while an execution ran before it is failed with E_CRASH_LOOP (as alloy dev's CRASH_LOOP_LIMIT). */
const CRASH_LOOP_LIMIT = 3;

export function createRunner(options: RunnerOptions): Runner {
  const now = options.now ?? Date.now;
  const http = options.http ?? createHttpClient({ egress: { loopback: false } });
  const connectors = createConnectorRegistry({ userConnectors: [] });
  const compiled = new WeakMap<WorkflowDef, CompiledWorkflow>();
  const clock = { now, sleep: realClock.sleep };
  const costs = options.costs ?? new CostLimiter(clock, options.state.buckets);
  const limits: QueueLimits = {
    concurrency: options.concurrency ?? DEFAULT_LIMITS.concurrency,
    perInstallation: options.perInstallation ?? DEFAULT_LIMITS.perInstallation,
    perShop: options.perShop ?? DEFAULT_LIMITS.perShop,
  };
  const queue = (options.queue ?? createLocalQueue)(options.state, limits);
  // Per release (immutable, cached by the definition source): its stream secrets from the env.
  const releaseSecrets = new WeakMap<LoadedProject, Record<string, string>>();
  const secretsOf = (project: LoadedProject) => {
    let s = releaseSecrets.get(project);
    if (!s) releaseSecrets.set(project, (s = streamSecrets(project, options.env)));
    return s;
  };
  // Opened config per sealed value (a new seal has a new iv): one decryption per installation
  // change, not per execution. Clear values stay in this process's memory only, as they do
  // while an execution runs; the state keeps them sealed.
  const configs = new Map<string, ConfigEntry>();
  const configOf = (installation: InstallationRecord, def: IntegrationDef): ConfigEntry => {
    const key = `${installation.id}\0${installation.config.kid}\0${installation.config.iv}\0${installation.config.tag}`;
    const hit = configs.get(key);
    if (hit && hit.def === def) return hit;
    const opened = openConfig(options.keyring, installation, def);
    deepFreeze(opened.values);
    if (configs.size >= 10_000) configs.clear();
    const entry: ConfigEntry = { def, opened };
    configs.set(key, entry);
    return entry;
  };
  /**
   * The values to redact: the release's stream secrets and the config's secret values, merged
   * once per (config, release) rather than per execution; frozen, as it is shared.
   */
  const secretsFor = (entry: ConfigEntry, project: LoadedProject): Record<string, string> => {
    if (entry.secrets && entry.secretsOf === project) return entry.secrets;
    entry.secretsOf = project;
    return (entry.secrets = Object.freeze({ ...secretsOf(project), ...entry.opened.secretValues }));
  };

  /** Loads an execution and what its bounds apply to; the queue decides when it runs. */
  async function prepare(id: string): Promise<PreparedExecution | undefined> {
    // One read where the state offers it (PostgreSQL), else the execution, then its installation and credentials.
    const loaded = options.state.executions.getForRun ? await options.state.executions.getForRun(id) : undefined;
    const row = loaded ? loaded.row : await options.state.executions.get(id);
    if (!row || (row.status !== 'queued' && row.status !== 'running')) return undefined;
    const installation = loaded ? loaded.installation : await options.state.installations.get(row.installationId);
    let shop: string | undefined;
    if (installation) {
      const known = shops.get(installation);
      if (known !== undefined) shop = known || undefined;
      else {
        // The first app by code unit order, as PostgreSQL's alloy_take_jobs picks it (COLLATE "C").
        for (const [app, credentialId] of Object.entries(installation.credentials).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
          const account = loaded ? loaded.accounts[credentialId] : (await options.state.credentials.get(credentialId))?.account;
          if (account) {
            shop = `${app}:${account}`;
            break;
          }
        }
        // A record the state hands out shared and frozen (SQLite's read cache) is replaced by a
        // new object on any write of installations or credentials, so its shop is remembered
        // with it; a fresh object per read (PostgreSQL) is never looked up again.
        if (!loaded && Object.isFrozen(installation)) shops.set(installation, shop ?? '');
      }
    }
    return { installationId: row.installationId, shop, run: (signal, abort) => run(row, installation, signal, abort) };
  }
  /** The shop of an installation record (see prepare); '' for none. */
  const shops = new WeakMap<InstallationRecord, string>();

  /** An interrupted run (stopping, a lost database) was not a death: it does not count toward E_CRASH_LOOP. */
  async function stoppedCleanly(id: string): Promise<false> {
    await options.state.executions.countResume(id, -1).catch(() => {});
    return false;
  }
  // Shopify calls, paced per shop (one per runner; the key names the shop).
  const pacedShop = pacedCall(http, costs);

  async function run(row: ExecutionRow, installation: InstallationRecord | undefined, outer: AbortSignal, abortOuter?: (reason: unknown) => void): Promise<boolean> {
    const id = row.id;
    // One controller per execution, aborted by the queue's signal or by the interruption:
    // the queue's own when it lends it (`abortOuter`: the local queue's is this execution's
    // alone), else one linked to it by hand (AbortSignal.any costs weak references and
    // dependants per execution).
    let signal = outer;
    let interrupt = abortOuter;
    let unlinkOuter = () => {};
    if (!interrupt) {
      const own = new AbortController();
      unlinkOuter = followSignal(outer, own);
      signal = own.signal;
      interrupt = (reason) => own.abort(reason);
    }
    const interrupted = interrupt;
    /** Ends the execution failed for good, before any step ran in this run (its final record). */
    const fail = async (error: { code: string; message: string; hint?: string }): Promise<true> => {
      await options.state.executions.checkpoint(id, { ...row.record, status: 'failed', endedAt: new Date(now()).toISOString(), error }, { last: true });
      return true;
    };
    try {
      // Counted durably before it runs again (as alloy dev does): an execution that took its
      // worker down every time it ran is failed instead of resumed forever, whichever worker
      // resumes it. A clean stop takes its count back below.
      const resumes = row.status === 'running' ? await options.state.executions.countResume(id) : 0;
      if (resumes >= CRASH_LOOP_LIMIT) {
        return await fail({
          code: 'E_CRASH_LOOP',
          message: `the worker running it stopped ${resumes} times (crashed or killed); it is not resumed again`,
          hint: 'Look at the steps it ran last (GET /v1/executions/:id) for what brings the process down, fix the workflow, then rerun it.',
        });
      }
      const version = await options.source.get(row.integration, row.version);
      const routed = version.defs.workflows.get(row.workflow);
      if (!installation || !routed) {
        const reason = !installation ? 'its installation was deleted' : `${row.workflow} is not in ${row.integration} v${row.version}`;
        return await fail({ code: 'E_GONE', message: `cannot run: ${reason}` });
      }
      let c = compiled.get(routed.workflow.def);
      if (!c) {
        try {
          c = compileWorkflow(routed.workflow.def);
        } catch (err) {
          // A release that skipped validation (another client's, in a store) and does not
          // compile: failed for good, not left queued to be retried at every start. Compiling
          // is a pure function of the definition, so any error it throws (a TypeError on a
          // step that is null, too) would be thrown again.
          const known = err instanceof WorkflowCompileError;
          return await fail({ code: known ? err.code : 'E_COMPILE', message: `cannot run: ${known ? err.message : `the workflow does not compile (${(err as Error).message})`}`, hint: known ? err.hint : 'Run `alloy validate` on the project and release it again.' });
        }
        compiled.set(routed.workflow.def, c);
      }
      const compiledWorkflow = c;
      const configEntry = configOf(installation, version.def);
      const config = configEntry.opened;
      // Config values marked secret are redacted wherever the engine records values.
      const secrets = secretsFor(configEntry, version.defs.project);
      // App -> account of the connections resolved (made on the first one: most executions resolve none).
      let accounts: Map<string, string> | undefined;
      // What is waited for follows the engine's durability rules (engine/durability.ts, as in
      // alloy dev): a non-idempotent call's in-flight mark and the final record are durable
      // before the engine goes on; a step that acted outside the process, or one waiting to
      // retry, is queued for the next group commit without waiting; after a pure step or the
      // `running` status nothing is written (the next write carries it). A failed queued write
      // fails the final one too.
      // One execution's writes are chained, so a state whose writes may complete out of order
      // (PostgreSQL's pool) never lets a progress write land after the final record.
      // A write asked for while another is still waiting to be handed to the state joins it:
      // the engine updates one record in place, and a write stores the record as it is when
      // the state takes it, so the waiting write carries the later change too. A progress
      // write waits one event-loop turn before it is handed on, so the final record that
      // usually follows a call's end at once is stored by the same write.
      let writes: Promise<void> = Promise.resolve();
      let waiting: Promise<void> | undefined;
      const write = (record: ExecutionRecord, soon: boolean): Promise<void> => {
        if (waiting) return waiting;
        const previous = writes;
        const p = (soon ? Promise.resolve() : new Promise<void>((resolve) => setImmediate(resolve)))
          .then(() => previous)
          .then(() => {
            waiting = undefined;
            // The last write of this run: the final record, unless a stream delivery follows it.
            const last = isFinalRecord(record) && (!compiledWorkflow.stream || record.stream !== undefined);
            return options.state.executions.checkpoint(id, record, { last });
          });
        waiting = p;
        writes = p;
        return p;
      };
      const checkpoint = (record: ExecutionRecord, changed: readonly StepRecord[]): Promise<void> => {
        if (isFinalRecord(record) || changed.some(isCallInFlight)) return write(record, true);
        if (record.streamRetry !== undefined || changed.some((s) => hasSideEffects(s) || s.retryAt !== undefined)) write(record, false).catch(() => {});
        return Promise.resolve();
      };
      const deps: EngineDeps = {
        connectors,
        // `signal` is the engine's `signal` (below): the engine aborts the signal it hands a
        // step's calls when that one aborts, so a call with a signal needs no link of its own
        // (as in alloy dev; a controller and two listeners per call were measurable).
        http: (req) => {
          const r = req.signal ? req : { ...req, signal };
          try {
            // A Shopify call waits for its shop's cost bucket (see pacedCall); any other goes straight on.
            return r.headers?.['X-Shopify-Access-Token'] ?? r.headers?.['x-shopify-access-token'] ? pacedShop(`shopify:${accounts?.get('shopify') ?? ''}`, r) : http(r);
          } catch (err) {
            return Promise.reject(err);
          }
        },
        // The engine's delays and retry waits pass `signal` itself (signalOwned): no AbortSignal.any for those.
        clock: { now, sleep: (ms, s) => realClock.sleep(ms, s && s !== signal ? AbortSignal.any([s, signal]) : signal) },
        random: Math.random,
        checkpoint,
        logger: silentLogger,
        resolveConnection: async (app) => {
          const runtime = connectors.get(app);
          if (!runtime) throw new MissingSecretError(`no connector "${app}"`, 'use a built-in connector');
          const credentialId = installation.credentials[app];
          let values: Record<string, string>;
          try {
            values = await options.connections.resolve(runtime.manifest, credentialId, installation.userId);
          } catch (err) {
            // A state read that fails for want of the database (a lost connection, a restarted
            // server) interrupts the execution instead of failing the step: it is resumed from
            // its last checkpoint, here or on another worker.
            if (!(err instanceof AlloyError)) interrupted(err);
            throw err;
          }
          if (values.shop) (accounts ??= new Map()).set(app, values.shop);
          return values;
        },
        settings: options.settings,
        secrets,
        env: options.env,
        signal,
        // This execution's alone (the queue's, lent, or the one made above).
        signalOwned: true,
        config: config.values,
      };
      // The row was read for this run only (a fresh object): the engine may update its record in place.
      const record = row.record;
      record.version = `v${row.version}`;
      const done = await executeWorkflow(c, record, deps);
      if (signal.aborted && (done.status === 'queued' || done.status === 'running')) return stoppedCleanly(id);
      options.onFinished?.(row, done);
      return true;
    } catch (err) {
      if (!signal.aborted) options.onError?.(id, err);
      // Interrupted (stopping, a lost database): unless it was cancelled, it is resumed later.
      const latest = await options.state.executions.get(id).catch(() => undefined);
      if (latest !== undefined && latest.status !== 'queued' && latest.status !== 'running') return true;
      return signal.aborted ? stoppedCleanly(id) : false;
    } finally {
      unlinkOuter();
    }
  }

  let started = false;
  return {
    ingest: (input, opts) => queue.ingest(input, opts),
    async start() {
      if (options.work === false) return;
      started = true;
      await queue.start({ prepare, onError: options.onError });
    },
    abort: (id) => queue.abort(id),
    idle: () => queue.idle(),
    async stop(graceMs = 10_000) {
      await queue.stop(started ? graceMs : 0);
    },
  };
}

interface ConfigEntry {
  def: IntegrationDef;
  opened: ReturnType<typeof openConfig>;
  /** See secretsFor. */
  secrets?: Record<string, string>;
  secretsOf?: LoadedProject;
}

/** Config values are shared by the executions of an installation: none may change them. */
function deepFreeze(value: unknown): void {
  if (!value || typeof value !== 'object' || Object.isFrozen(value)) return;
  Object.freeze(value);
  for (const v of Object.values(value)) deepFreeze(v);
}

/** The `secrets.NAME` a release's streams reference, read from the server's environment (as in dev). */
function streamSecrets(project: LoadedProject, env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of referencedSecretNames(project).all) if (env[name]) out[name] = env[name]!;
  return out;
}
