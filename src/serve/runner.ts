/**
 * Runs executions for `alloy serve` on the engine (src/engine): each execution on the
 * integration@version it recorded when created (so an upgrade never changes one in flight),
 * with the installation's credentials, config and the app settings, checkpointing every
 * step into the state before the next starts. One in-memory WorkerPool per process, seeded
 * from the state's unfinished executions at start; executions of one installation run at
 * most `perInstallation` at a time; calls to an app are paced per (app, account) by the
 * cost limiter.
 */
import { compileWorkflow, type CompiledWorkflow } from '../engine/compile.js';
import { executeWorkflow } from '../engine/execute.js';
import { realClock } from '../engine/clock.js';
import type { EngineDeps, ExecutionRecord } from '../engine/types.js';
import type { AppSettings, WorkflowDef } from '../core/model.js';
import { createConnectorRegistry } from '../connectors/registry.js';
import { createHttpClient, followSignal } from '../connectors/http-client.js';
import type { HttpClient } from '../connectors/types.js';
import { MissingSecretError } from '../errors.js';
import { WorkerPool } from '../server/worker-pool.js';
import { referencedSecretNames } from '../server/engine-executor.js';
import type { LoadedProject } from '../core/project-types.js';
import type { DefinitionSource } from './definitions.js';
import { CostLimiter, KeyedSemaphore, pacedHttp } from './limiter.js';
import type { Connections } from './connections.js';
import { openConfig } from './config-values.js';
import type { Keyring } from './crypto.js';
import type { ExecutionRow, ServeState } from './state/types.js';

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
  now?: () => number;
  onFinished?(row: ExecutionRow, record: ExecutionRecord): void;
  onError?(id: string, err: unknown): void;
}

export interface Runner {
  enqueue(ids: string[]): void;
  /** Re-queues what was unfinished when the process stopped. */
  start(): Promise<void>;
  /** Aborts a running execution (its status is already `cancelled` in the state). */
  abort(id: string): void;
  idle(): Promise<void>;
  stop(graceMs?: number): Promise<void>;
}

const silentLogger = { debug() {}, info() {}, warn() {} };

export function createRunner(options: RunnerOptions): Runner {
  const now = options.now ?? Date.now;
  const http = options.http ?? createHttpClient({ egress: { loopback: false } });
  const connectors = createConnectorRegistry({ userConnectors: [] });
  const compiled = new WeakMap<WorkflowDef, CompiledWorkflow>();
  const perInstallation = new KeyedSemaphore(options.perInstallation ?? 4);
  const clock = { now, sleep: realClock.sleep };
  const costs = options.costs ?? new CostLimiter(clock, options.state.buckets);
  const running = new Map<string, AbortController>();
  const parked = new Map<string, string[]>();
  const stopAll = new AbortController();

  async function run(id: string): Promise<void> {
    const row = await options.state.executions.get(id);
    if (!row || (row.status !== 'queued' && row.status !== 'running')) return;
    // At its bound, an installation's execution is parked (not holding a worker), so a busy
    // installation's backlog never keeps another installation's work from starting.
    const release = perInstallation.tryAcquire(row.installationId);
    if (!release) {
      const q = parked.get(row.installationId) ?? [];
      q.push(id);
      parked.set(row.installationId, q);
      return;
    }
    const controller = new AbortController();
    running.set(id, controller);
    const unlink = followSignal(stopAll.signal, controller);
    try {
      const installation = await options.state.installations.get(row.installationId);
      const version = await options.source.get(row.integration, row.version);
      const routed = version.defs.workflows.get(row.workflow);
      if (!installation || !routed) {
        const reason = !installation ? 'its installation was deleted' : `${row.workflow} is not in ${row.integration} v${row.version}`;
        await options.state.executions.checkpoint(id, { ...row.record, status: 'failed', endedAt: new Date(now()).toISOString(), error: { code: 'E_GONE', message: `cannot run: ${reason}` } });
        return;
      }
      let c = compiled.get(routed.workflow.def);
      if (!c) {
        c = compileWorkflow(routed.workflow.def);
        compiled.set(routed.workflow.def, c);
      }
      const config = openConfig(options.keyring, installation, version.def);
      // Config values marked secret are redacted wherever the engine records values.
      const secrets: Record<string, string> = { ...streamSecrets(version.defs.project, options.env), ...config.secretValues };
      const accounts = new Map<string, string>();
      const signal = controller.signal;
      const paced = pacedHttp(http, costs, (req) => (req.headers?.['X-Shopify-Access-Token'] ?? req.headers?.['x-shopify-access-token'] ? `shopify:${accounts.get('shopify') ?? ''}` : undefined));
      const deps: EngineDeps = {
        connectors,
        http: async (req) => {
          const both = new AbortController();
          const unlinkA = followSignal(signal, both);
          const unlinkB = req.signal ? followSignal(req.signal, both) : () => {};
          try {
            return await paced({ ...req, signal: both.signal });
          } finally {
            unlinkA();
            unlinkB();
          }
        },
        clock: { now, sleep: (ms, s) => realClock.sleep(ms, s ? AbortSignal.any([s, signal]) : signal) },
        random: Math.random,
        checkpoint: (record) => options.state.executions.checkpoint(id, record),
        logger: silentLogger,
        resolveConnection: async (app) => {
          const runtime = connectors.get(app);
          if (!runtime) throw new MissingSecretError(`no connector "${app}"`, 'use a built-in connector');
          const credentialId = installation.credentials[app];
          const values = await options.connections.resolve(runtime.manifest, credentialId, installation.userId);
          if (values.shop) accounts.set(app, values.shop);
          return values;
        },
        settings: options.settings,
        secrets,
        env: options.env,
        signal,
        config: config.values,
      };
      const record = structuredClone(row.record);
      record.version = `v${row.version}`;
      const done = await executeWorkflow(c, record, deps);
      options.onFinished?.(row, done);
    } catch (err) {
      if (!controller.signal.aborted) options.onError?.(id, err);
    } finally {
      unlink();
      running.delete(id);
      release();
      const q = parked.get(row.installationId);
      const next = q?.shift();
      if (q && q.length === 0) parked.delete(row.installationId);
      if (next) pool.push(next);
    }
  }

  const pool = new WorkerPool({ concurrency: options.concurrency ?? 16, run, onError: options.onError });
  return {
    enqueue: (ids) => ids.forEach((i) => pool.push(i)),
    async start() {
      for (const id of await options.state.executions.unfinished()) pool.push(id);
    },
    abort(id) {
      running.get(id)?.abort(new Error('cancelled'));
    },
    idle: () => pool.idle(),
    async stop(graceMs = 10_000) {
      pool.stop();
      const timer = setTimeout(() => stopAll.abort(new Error('stopping')), graceMs);
      await pool.idle();
      clearTimeout(timer);
    },
  };
}

/** The `secrets.NAME` a release's streams reference, read from the server's environment (as in dev). */
function streamSecrets(project: LoadedProject, env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of referencedSecretNames(project).all) if (env[name]) out[name] = env[name]!;
  return out;
}
