/**
 * The WorkflowExecutor backed by the real engine: compiles each workflow once (per
 * definitions object) and runs executeWorkflow with the runtime's checkpoint. Connectors,
 * credentials, HTTP, clock and secrets are passed in, as the engine requires.
 */
import { compileWorkflow, type CompiledWorkflow } from '../engine/compile.js';
import { executeWorkflow } from '../engine/execute.js';
import { realClock } from '../engine/clock.js';
import type { EngineDeps, EngineLogger } from '../engine/types.js';
import { resolveExpressionLimits } from '../engine/limits.js';
import type { ExpressionLimits } from '../core/expression-limits.js';
import { locateInFile } from '../core/source-file.js';
import path from 'node:path';
import type { WorkflowDef } from '../core/model.js';
import type { LoadedProject } from '../core/project-types.js';
import { createConnectorRegistry } from '../connectors/registry.js';
import { createHttpClient } from '../connectors/http-client.js';
import { resolveConnection } from '../connectors/credentials.js';
import type { ConnectorRegistry, HttpClient } from '../connectors/types.js';
import { MissingSecretError } from '../errors.js';
import type { WorkflowExecutor } from './executor.js';

export interface EngineExecutorOptions {
  /** Returns the current project (hot reload swaps it). */
  project(): LoadedProject;
  /** Environment and .env merged (connection fields, stream URL). */
  env: Record<string, string | undefined>;
  /** Values workflows may read as `secrets.*` (stream secrets); redacted everywhere. */
  secrets?: Record<string, string>;
  /** Outbound HTTP; default a client under the egress policy below and the project's `egress.allow`. */
  http?: HttpClient;
  /**
   * Egress policy of the default client: loopback is allowed unless `loopback: false`
   * (`alloy serve` passes false; `alloy dev` reaches the customer's local server).
   */
  egress?: { loopback?: boolean };
  logger?: EngineLogger;
  now?: () => number;
}

const silentLogger: EngineLogger = { debug() {}, info() {}, warn() {} };

export function createEngineExecutor(options: EngineExecutorOptions): WorkflowExecutor {
  const compiled = new WeakMap<WorkflowDef, CompiledWorkflow>();
  const registries = new WeakMap<LoadedProject, ConnectorRegistry>();
  const clients = new WeakMap<LoadedProject, HttpClient>();
  const limits = new WeakMap<LoadedProject, ExpressionLimits>();
  const httpFor = (project: LoadedProject) => {
    if (options.http) return options.http;
    let c = clients.get(project);
    if (!c) {
      c = createHttpClient({ egress: { loopback: options.egress?.loopback ?? true, allow: project.config.egress?.allow } });
      clients.set(project, c);
    }
    return c;
  };
  const limitsFor = (project: LoadedProject) => {
    let l = limits.get(project);
    if (!l) {
      l = resolveExpressionLimits(project.config.limits);
      limits.set(project, l);
    }
    return l;
  };
  const now = options.now ?? Date.now;
  const registryFor = (project: LoadedProject) => {
    let r = registries.get(project);
    if (!r) {
      r = createConnectorRegistry({ userConnectors: project.connectors.map((c) => c.def) });
      registries.set(project, r);
    }
    return r;
  };
  return async (workflow, record, { checkpoint, signal }) => {
    let c = compiled.get(workflow.def);
    if (!c) {
      c = compileWorkflow(workflow.def);
      compiled.set(workflow.def, c);
    }
    const project = options.project();
    const connectors = registryFor(project);
    const http = httpFor(project);
    const deps: EngineDeps = {
      connectors,
      // The runtime's signal is the engine's `signal` (below): the engine aborts what a step
      // passes as its calls' signal when it fires, so a call with one needs no link of its own
      // (a controller and a listener per call were measurable at thousands of calls a second).
      http: (req) => http(req.signal ? req : { ...req, signal }),
      clock: { now, sleep: (ms, s) => realClock.sleep(ms, s ? AbortSignal.any([s, signal]) : signal) },
      random: Math.random,
      checkpoint,
      logger: options.logger ?? silentLogger,
      resolveConnection: async (app, userId) => {
        const runtime = connectors.get(app);
        if (!runtime) throw new MissingSecretError(`no connector "${app}"`, 'add it under connectors/ or fix the `uses:` name');
        return resolveConnection({ manifest: runtime.manifest, userId, env: options.env, projectRoot: project.root });
      },
      settings: project.config.apps,
      secrets: options.secrets,
      env: options.env,
      limits: limitsFor(project),
      locate: (pointer, offset) => locateInFile(path.join(project.root, workflow.file), workflow.file, pointer, offset),
      // Stopping the runtime for good interrupts the run: calls and sleeps in flight are aborted
      // and executeWorkflow rejects, leaving the record as last checkpointed (it resumes).
      signal,
    };
    return executeWorkflow(c, record, deps);
  };
}


/** Names used as `secrets.NAME` in any workflow's stream or webhook verification settings. */
export function referencedSecretNames(project: LoadedProject): { stream: string[]; all: string[] } {
  const stream = new Set<string>();
  const all = new Set<string>();
  const scan = (text: unknown, into: Set<string>[]) => {
    if (typeof text !== 'string') return;
    for (const m of text.matchAll(/secrets\.([A-Za-z_][A-Za-z0-9_]*)/g)) for (const s of into) s.add(m[1]);
  };
  for (const w of project.integrations.flatMap((i) => i.workflows)) {
    scan(w.def.stream?.secret, [stream, all]);
    scan(w.def.stream?.url, [all]);
    const verify = (w.def.trigger as { verify?: { secret?: string } }).verify;
    scan(verify?.secret, [all]);
  }
  return { stream: [...stream].sort(), all: [...all].sort() };
}
