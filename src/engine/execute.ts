/**
 * The executor: runs a compiled workflow for one execution record, with every side effect
 * passed in (connectors, HTTP, clock, randomness, persistence). After every step the record
 * is checkpointed; given a record that was interrupted, it resumes: steps whose record is
 * final (succeeded, skipped, failed) are replayed from the record and never called again,
 * a step caught `running` is called again with the same idempotency key — unless its action
 * is declared `idempotent: false`: then it fails with E_OUTCOME_UNKNOWN (the first call may
 * have taken effect), and the record is checkpointed just before such an action is called.
 */
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import type { ActionContext, ConnectorRuntime } from '../connectors/types.js';
import { StepError } from '../errors.js';
import type {
  CompiledActionStep,
  CompiledBranchStep,
  CompiledCodeStep,
  CompiledDelayStep,
  CompiledEachStep,
  CompiledIfStep,
  CompiledStep,
  CompiledStopStep,
  CompiledWorkflow,
} from './compile.js';
import { setLongTimeout } from './clock.js';
import { tryParseDuration } from './duration.js';
import {
  CheckpointError,
  ExecutionInterruptedError,
  ExecutionTimeoutError,
  FilteredSignal,
  outcomeUnknownError,
  StepFailed,
  toErrorInfo,
} from './errors.js';
import { ExpressionFailure, isTruthy, renderAt } from './evaluate.js';
import type { CompiledValue, EvaluateOptions } from '../core/expressions.js';
import { DEFAULT_EXPRESSION_LIMITS } from '../core/expression-limits.js';
import { createRedactor, isSecretKey, redactActionInput, type Redactor } from './redact.js';
import { isRetryable, retryDelay } from './retry.js';
import { deliverStream } from './stream.js';
import type { EngineDeps, ErrorInfo, ExecutionRecord, StepRecord } from './types.js';

export interface ExecutionInit {
  /** Default: `exec_<uuid>`. */
  id?: string;
  /** `<integration>/<workflow>`. */
  workflow: string;
  version?: string;
  userId?: string;
  event: unknown;
}

/** A new, queued record. `now` is the clock's epoch milliseconds. */
export function createExecutionRecord(init: ExecutionInit, now: number): ExecutionRecord {
  const record: ExecutionRecord = {
    id: init.id ?? `exec_${randomUUID()}`,
    workflow: init.workflow,
    ...(init.version !== undefined ? { version: init.version } : {}),
    ...(init.userId !== undefined ? { userId: init.userId } : {}),
    event: init.event,
    status: 'queued',
    createdAt: new Date(now).toISOString(),
    steps: {},
  };
  return record;
}

interface StepScope {
  output?: unknown;
  error?: ErrorInfo;
}

/** A scope of step outputs and extra names (`item`, `index`, `error`). */
interface Frame {
  steps: Record<string, StepScope>;
  vars: Record<string, unknown>;
  /** Prepended to step ids to make paths: '' at top level, `lines[2].` inside an each. */
  prefix: string;
  /** The expression context of this frame, made once (its `steps` is the frame's own, updated in place). */
  ctx?: Record<string, unknown>;
}

function stepTimeoutError(path: string, timeoutMs: number): StepError {
  return new StepError(`step "${path}" timed out after ${timeoutMs} ms`, {
    code: 'E_STEP_TIMEOUT',
    retryable: true,
    hint: 'Raise the step `timeout`, or check the service it calls.',
  });
}

const TERMINAL = new Set(['succeeded', 'failed', 'filtered']);

/** Up to 9999-12-31T23:59:59.999Z, the range where toISOString has 4-digit years. */
const MAX_PLAIN_ISO_MS = 253402300800000;
let isoSecond = NaN;
let isoPrefix = '';
/**
 * `new Date(ms).toISOString()`, with the text up to the seconds made once per second (steps
 * of many executions start and end within the same second: a Date and its formatting were a
 * measurable share of a small execution's engine time).
 */
export function isoTime(ms: number): string {
  if (!(ms >= 0 && ms < MAX_PLAIN_ISO_MS)) return new Date(ms).toISOString();
  const whole = Math.trunc(ms);
  const second = whole - (whole % 1000);
  if (second !== isoSecond) {
    isoPrefix = new Date(second).toISOString().slice(0, 20); // 'YYYY-MM-DDTHH:MM:SS.'
    isoSecond = second;
  }
  const milli = whole - second;
  return `${isoPrefix}${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}Z`;
}

/** Whether a connector's calls need a resolved connection (fields or an auth scheme). */
function needsConnection(runtime: ConnectorRuntime): boolean {
  const m = runtime.manifest;
  if (m.auth && m.auth.type !== 'none') return true;
  for (const k in m.connection) if (Object.hasOwn(m.connection, k)) return true;
  return false;
}

/** Longest run of steps without giving the event loop a turn (no stall above 50 ms: issue 13). */
export const YIELD_AFTER_MS = 5;

/**
 * Runs (or resumes) the execution in `record`, mutating it, and returns it when it has
 * ended. Rejects only when `deps.checkpoint` throws (CheckpointError): that is a crash, and
 * the last checkpointed record can be given back here to resume.
 */
export async function executeWorkflow(
  compiled: CompiledWorkflow,
  record: ExecutionRecord,
  deps: EngineDeps,
): Promise<ExecutionRecord> {
  return new Execution(compiled, record, deps).run();
}

class Execution {
  private readonly redactor: Redactor;
  private readonly base: Record<string, unknown>;
  /**
   * The engine's own controller (its timeout, and the link to `deps.signal`), unless the
   * workflow has no timeout and `deps.signal` is this execution's alone (`signalOwned`): then
   * that signal is the execution's as is, and any abort of it is an interruption.
   */
  private readonly controller: AbortController | undefined;
  /** Aborted on the execution's timeout or its interruption; what steps and calls run under. */
  private readonly signal: AbortSignal;
  /** Per app, made on first use (most executions resolve none, or one). */
  private connections: Map<string, Promise<Record<string, string>>> | undefined;
  private persistChain: Promise<void> = Promise.resolve();
  private crashed: CheckpointError | undefined;
  /** Action steps found `running` with inputs recorded in the given record: their call may have happened. */
  private caughtRunning: Set<string> | undefined;

  constructor(
    private readonly compiled: CompiledWorkflow,
    private readonly record: ExecutionRecord,
    private readonly deps: EngineDeps,
  ) {
    if (compiled.timeoutMs === undefined && deps.signal && deps.signalOwned) {
      this.controller = undefined;
      this.signal = deps.signal;
    } else {
      this.controller = new AbortController();
      this.signal = this.controller.signal;
    }
    this.redactor = createRedactor(Object.values(deps.secrets ?? {}));
    this.base = {
      event: record.event,
      user: { id: record.userId },
      execution: { id: record.id, workflow: record.workflow, startedAt: record.startedAt },
      ...(deps.config ? { config: deps.config } : {}),
    };
  }

  private manyListeners = false;
  /**
   * Steps without a timeout of their own listen on the execution's signal directly
   * (withTimeout, and their calls), up to an `each`'s concurrency (64) at once: no leak
   * warning for that. Raised when an `each` runs items side by side, not for every execution
   * (setMaxListeners on an EventTarget cost about as much as making its controller).
   */
  private allowManyListeners(): void {
    if (this.manyListeners) return;
    this.manyListeners = true;
    setMaxListeners(0, this.signal);
  }

  /** When this execution last let the event loop run (see yieldIfLong). */
  private lastYield = performance.now();

  /**
   * Steps whose expressions and checkpoints complete without I/O run as one chain of
   * microtasks, which never lets the event loop serve anything else: an `each` over 10,000
   * items would hold it for its whole run. Before each step, once YIELD_AFTER_MS have passed
   * since the last turn, wait for the next one (setImmediate: after pending I/O callbacks).
   */
  private yieldIfLong(): Promise<void> | undefined {
    const now = performance.now();
    if (now - this.lastYield < YIELD_AFTER_MS) return undefined;
    return new Promise<void>((resolve) =>
      setImmediate(() => {
        this.lastYield = performance.now();
        resolve();
      }),
    );
  }

  private lastMs = NaN;
  private lastIso = '';
  /** ISO time of `ms` (default now); consecutive steps often share a millisecond, so cache one. */
  private iso(ms = this.deps.clock.now()): string {
    if (ms !== this.lastMs) {
      this.lastMs = ms;
      this.lastIso = isoTime(ms);
    }
    return this.lastIso;
  }

  /**
   * Checkpoints are serialized (each concurrency) and a failed one stops everything.
   * `step` is the step record that changed (none: the execution's own status changed).
   */
  private persist(step?: StepRecord): Promise<void> {
    if (this.crashed) return Promise.reject(this.crashed);
    const changed = step ? [step] : [];
    if (this.persisting === 0) {
      // None in flight: checkpoint now rather than a turn of the chain later (two promises
      // and an async frame less per step); later ones still wait for this one.
      this.persisting++;
      let p: Promise<void>;
      try {
        p = Promise.resolve(this.deps.checkpoint(this.record, changed));
      } catch (err) {
        p = Promise.reject(err);
      }
      this.persistChain = p.then(this.persisted, this.persistFailed);
      return this.persistChain;
    }
    this.persisting++;
    this.persistChain = this.persistChain.then(async () => {
      try {
        if (this.crashed) throw this.crashed;
        await this.deps.checkpoint(this.record, changed);
      } catch (err) {
        this.persistFailed(err);
      }
      this.persisting--;
    });
    return this.persistChain;
  }

  /** Checkpoints asked for and not yet settled (see persist). */
  private persisting = 0;
  private readonly persisted = () => {
    this.persisting--;
  };
  private readonly persistFailed = (err: unknown): never => {
    this.persisting--;
    this.crashed = err instanceof CheckpointError ? err : new CheckpointError(err);
    throw this.crashed;
  };

  async run(): Promise<ExecutionRecord> {
    const r = this.record;
    if (!TERMINAL.has(r.status)) {
      const startMs = this.deps.clock.now();
      r.status = 'running';
      const startedNow = r.startedAt === undefined;
      r.startedAt ??= isoTime(startMs);
      (this.base.execution as Record<string, unknown>).startedAt = r.startedAt;
      // The timeout bounds this run of the executor (a resumed run gets the full budget again).
      const timeoutMs = this.compiled.timeoutMs;
      const own = this.controller;
      const cancelTimer =
        timeoutMs === undefined || !own ? undefined : setLongTimeout(() => own.abort(new ExecutionTimeoutError(timeoutMs)), timeoutMs);
      const outer = own ? this.deps.signal : undefined;
      const interrupt = () => own!.abort(new ExecutionInterruptedError());
      if (outer?.aborted) interrupt();
      else outer?.addEventListener('abort', interrupt, { once: true });
      try {
        await this.persist();
        await this.runSteps(this.compiled.steps, { steps: {}, vars: {}, prefix: '' });
        r.status = 'succeeded';
      } catch (err) {
        if (err instanceof CheckpointError) throw err;
        if (this.interrupted()) throw this.controller ? this.signal.reason : new ExecutionInterruptedError();
        if (err instanceof FilteredSignal) {
          r.status = 'filtered';
          r.reason = err.reason;
        } else {
          r.status = 'failed';
          r.error = toErrorInfo(err, '', this.redactor);
          if (r.error.step === '') delete r.error.step;
        }
      } finally {
        cancelTimer?.();
        outer?.removeEventListener('abort', interrupt);
      }
      const endMs = this.deps.clock.now();
      r.endedAt = this.iso(endMs);
      // As Date.parse of both ISO times (whole milliseconds), without parsing what was just made.
      r.durationMs = Math.trunc(endMs) - (startedNow ? Math.trunc(startMs) : Date.parse(r.startedAt));
      this.deps.logger.info('execution ended', { execution: r.id, workflow: r.workflow, status: r.status });
      await this.persist();
    }
    if (this.compiled.stream && !r.stream) {
      r.stream = await deliverStream(this.compiled.stream, r, this.deps, this.redactor, async (wait) => {
        if (!wait) {
          delete r.streamRetry;
          return;
        }
        r.streamRetry = wait;
        // A failed checkpoint is not a failed delivery: the persist after delivery reports it.
        await this.persist().catch(() => {});
      });
      await this.persist();
    }
    return r;
  }

  /** Interrupted from outside (not a timeout): leave the record as last checkpointed. */
  private interrupted(): boolean {
    // Under a signal of its own (no timeout), any abort is one.
    return this.controller ? this.signal.reason instanceof ExecutionInterruptedError : this.signal.aborted;
  }

  /** Evaluation options under the execution's signal alone (steps without a `timeout`), made once. */
  private evalOptions: EvaluateOptions | undefined;

  /**
   * Renders a step's field within the expression limits; the execution's abort (timeout,
   * interrupt) and the step's own `timeout` stop an evaluation that is still running.
   */
  private render(value: CompiledValue, ctx: Record<string, unknown>, step: CompiledStep, path: string, field: string): Promise<unknown> {
    if (step.timeoutMs !== undefined && value.kind !== 'literal') return this.renderTimed(value, ctx, step, path, field, step.timeoutMs);
    this.evalOptions ??= { limits: this.deps.limits ?? DEFAULT_EXPRESSION_LIMITS, signal: this.signal };
    return renderAt(value, ctx, { step: path, field, stepPointer: step.pointer, options: this.evalOptions });
  }

  private async renderTimed(value: CompiledValue, ctx: Record<string, unknown>, step: CompiledStep, path: string, field: string, timeoutMs: number) {
    const execSignal = this.signal;
    const local = new AbortController();
    const followExec = () => local.abort(execSignal.reason);
    if (execSignal.aborted) followExec();
    else execSignal.addEventListener('abort', followExec, { once: true });
    const cancelTimer = setLongTimeout(() => local.abort(stepTimeoutError(path, timeoutMs)), timeoutMs);
    try {
      const options = { limits: this.deps.limits ?? DEFAULT_EXPRESSION_LIMITS, signal: local.signal };
      return await renderAt(value, ctx, { step: path, field, stepPointer: step.pointer, options });
    } finally {
      cancelTimer();
      execSignal.removeEventListener('abort', followExec);
    }
  }

  private context(frame: Frame): Record<string, unknown> {
    return (frame.ctx ??= { ...this.base, steps: frame.steps, ...frame.vars });
  }

  private async runSteps(steps: CompiledStep[], frame: Frame): Promise<void> {
    for (const step of steps) await this.runStep(step, frame);
  }

  private async runStep(step: CompiledStep, frame: Frame): Promise<void> {
    const turn = this.yieldIfLong();
    if (turn) await turn;
    const path = frame.prefix + step.id;
    const prev = this.record.steps[path];
    const leaf = step.kind === 'action' || step.kind === 'delay' || step.kind === 'stop' || step.kind === 'code';
    if (prev && leaf && prev.status !== 'running') return this.replay(step, prev, frame);
    // Inputs are recorded just before an action is called: with them, the call may have happened.
    if (prev && step.kind === 'action' && prev.status === 'running' && prev.inputs !== undefined) (this.caughtRunning ??= new Set()).add(path);

    const now = this.deps.clock.now();
    let rec: StepRecord;
    if (prev) rec = prev;
    else {
      // Fields in this order (the stored JSON's), without a spread object per optional field.
      rec = { path, id: step.id } as StepRecord;
      if (step.name !== undefined) rec.name = step.name;
      rec.kind = step.kind;
      if (step.kind === 'action') rec.uses = step.uses;
      rec.status = 'running';
      rec.attempts = 0;
      rec.startedAt = this.iso(now);
      this.record.steps[path] = rec;
    }
    const started = prev ? Date.parse(prev.startedAt) : now;

    try {
      if (this.signal.aborted) throw this.signal.reason;
      const ctx = this.context(frame);
      if (step.when && !isTruthy(await this.render(step.when, ctx, step, path, '/when'))) {
        delete rec.output;
        delete rec.error;
        this.finishStep(rec, 'skipped', started);
        frame.steps[step.id] = {};
        await this.persist(rec);
        return;
      }
      const output = await this.dispatch(step, frame, rec, ctx, path);
      if (output !== undefined) rec.output = this.redactor.value(output);
      // `delete` of a field that is not there still costs a runtime call: most steps never had one.
      if ('error' in rec) delete rec.error;
      this.finishStep(rec, 'succeeded', started);
      frame.steps[step.id] = { output };
      this.deps.logger.debug('step succeeded', { execution: this.record.id, step: path, attempts: rec.attempts });
      await this.persist(rec);
    } catch (err) {
      if (err instanceof CheckpointError) throw err;
      if (this.interrupted()) throw this.signal.reason;
      if (err instanceof FilteredSignal) {
        if (rec.status === 'running') this.finishStep(rec, 'succeeded', started);
        await this.persist(rec);
        throw err;
      }
      const info = toErrorInfo(err, path, this.redactor);
      await this.locate(err, info);
      rec.error = info;
      this.finishStep(rec, 'failed', started);
      this.deps.logger.debug('step failed', { execution: this.record.id, step: path, code: info.code });
      // An execution timeout is not the step's to handle.
      if (this.signal.aborted) {
        await this.persist(rec);
        throw new StepFailed(info);
      }
      await this.handleFailure(step, rec, info, frame);
    }
  }

  private finishStep(rec: StepRecord, status: StepRecord['status'], started: number): void {
    const end = this.deps.clock.now();
    rec.status = status;
    if ('callInFlight' in rec) delete rec.callInFlight;
    rec.endedAt = this.iso(end);
    rec.durationMs = end - started;
  }

  /** Adds where in the workflow file an expression hit its limit (`deps.locate`), when known. */
  private async locate(err: unknown, info: ErrorInfo): Promise<void> {
    if (!this.deps.locate || !(err instanceof ExpressionFailure)) return;
    const d = err.details ?? {};
    if (typeof d.pointer !== 'string' || typeof d.templateOffset !== 'number') return;
    try {
      const where = await this.deps.locate(d.pointer, d.templateOffset);
      if (where) {
        info.location = where;
        info.message = `${info.message} (${where})`;
      }
    } catch {
      // The location is a courtesy: the error stands without it.
    }
  }

  /** Applies `onError` to a failed step (first run and replay alike). */
  private async handleFailure(step: CompiledStep, rec: StepRecord, info: ErrorInfo, frame: Frame): Promise<void> {
    const onError = step.onError;
    if (onError === 'fail') {
      delete rec.handled;
      await this.persist(rec);
      throw new StepFailed(info);
    }
    rec.handled = true;
    frame.steps[step.id] = { error: info };
    await this.persist(rec);
    if (onError === 'continue') return;
    const error = { message: info.message, code: info.code, status: info.status, step: info.step };
    await this.runSteps(onError.steps, { steps: frame.steps, vars: { ...frame.vars, error }, prefix: frame.prefix });
  }

  /** A leaf step already final in the record: restore its result, call nothing. */
  private async replay(step: CompiledStep, prev: StepRecord, frame: Frame): Promise<void> {
    if (prev.status === 'skipped') {
      frame.steps[step.id] = {};
      return;
    }
    if (prev.status === 'failed') {
      const info = prev.error ?? { message: 'failed', code: 'E_STEP', step: prev.path };
      if (this.signal.aborted) throw new StepFailed(info);
      return this.handleFailure(step, prev, info, frame);
    }
    frame.steps[step.id] = { output: prev.output };
    if (step.kind === 'stop') {
      throw new FilteredSignal(String((prev.output as { reason?: unknown } | undefined)?.reason ?? ''));
    }
  }

  private dispatch(step: CompiledStep, frame: Frame, rec: StepRecord, ctx: Record<string, unknown>, path: string): Promise<unknown> {
    switch (step.kind) {
      case 'action':
        return this.runAction(step, rec, ctx, path);
      case 'if':
        return this.runIf(step, frame, rec, ctx, path);
      case 'branch':
        return this.runBranch(step, frame, rec, ctx, path);
      case 'each':
        return this.runEach(step, frame, rec, ctx, path);
      case 'delay':
        return this.runDelay(step, rec, ctx, path);
      case 'stop':
        return this.runStop(step, rec, ctx, path);
      case 'code':
        return this.runCode(step, rec, frame, path);
    }
  }

  // ------------------------------------------------------------ actions

  private async runAction(step: CompiledActionStep, rec: StepRecord, ctx: Record<string, unknown>, path: string): Promise<unknown> {
    if (step.app === 'transform' && step.action === 'transform') {
      const value = await this.render(step.with, ctx, step, path, '/with');
      rec.inputs = redactActionInput(this.redactor, value);
      rec.attempts += 1;
      return value;
    }
    const runtime = this.deps.connectors.get(step.app);
    if (!runtime) {
      throw new StepError(`step "${path}": no connector named "${step.app}"`, {
        code: 'E_UNKNOWN_CONNECTOR',
        hint: `Known connectors: ${['transform', ...this.deps.connectors.names()].join(', ')}. Add connectors/${step.app}.yaml or fix \`uses\`.`,
      });
    }
    const handler = runtime.actions[step.action];
    if (!handler) {
      throw new StepError(`step "${path}": connector "${step.app}" has no action "${step.action}"`, {
        code: 'E_UNKNOWN_ACTION',
        hint: `Actions of ${step.app}: ${Object.keys(runtime.actions).join(', ') || 'none'}.`,
      });
    }
    // Shopify orderCreate and the like: a second call may apply the action a second time.
    const idempotent = runtime.manifest.actions?.[step.action]?.idempotent !== false;
    if (!idempotent && this.caughtRunning?.has(path)) {
      throw outcomeUnknownError(path, step.uses, 'the previous run stopped during its call');
    }
    const connection = needsConnection(runtime) ? await this.connection(step.app, runtime) : {};
    const input = (await this.render(step.with, ctx, step, path, '/with')) as Record<string, unknown>;
    rec.inputs = redactActionInput(this.redactor, input);
    // Durable "about to call" mark: if the process dies during the call, resume sees the step
    // `running` with inputs and fails it instead of creating the same thing twice.
    if (!idempotent) {
      rec.callInFlight = true;
      await this.persist(rec);
    }
    const actionContext = (signal: AbortSignal): ActionContext => ({
      connection,
      settings: this.deps.settings?.[step.app] ?? {},
      idempotencyKey: `${this.record.id}:${path}`,
      signal,
      http: this.deps.http,
      logger: this.deps.logger,
      now: () => this.deps.clock.now(),
      sleep: (ms, s) => this.deps.clock.sleep(ms, s),
    });
    return this.withRetry(step, rec, path, (signal) => handler(input, actionContext(signal)), idempotent);
  }

  private connection(app: string, runtime: ConnectorRuntime): Promise<Record<string, string>> {
    const m = runtime.manifest;
    let p = (this.connections ??= new Map()).get(app);
    if (!p) {
      p = this.deps.resolveConnection(app, this.record.userId).then((conn) => {
        const fields = m.connection ?? {};
        this.redactor.add(Object.entries(conn).filter(([k]) => fields[k]?.secret || isSecretKey(k)).map(([, v]) => v));
        return conn;
      });
      this.connections.set(app, p);
    }
    return p;
  }

  /** Calls `fn` under the step's timeout, retrying per its policy. */
  private withRetry(
    step: CompiledActionStep,
    rec: StepRecord,
    path: string,
    fn: (signal: AbortSignal) => Promise<unknown>,
    idempotent = true,
  ): Promise<unknown> {
    // An attempt, and on its failure the retry policy: a promise chain rather than an async
    // frame around every call (most calls succeed at the first attempt).
    rec.attempts += 1;
    return this.withTimeout(fn, step.timeoutMs, path).then(undefined, (err: unknown) => this.afterAttempt(step, rec, path, fn, idempotent, err));
  }

  /** After a failed attempt: the error to fail with, or the next attempt once its wait is over. */
  private async afterAttempt(
    step: CompiledActionStep,
    rec: StepRecord,
    path: string,
    fn: (signal: AbortSignal) => Promise<unknown>,
    idempotent: boolean,
    err: unknown,
  ): Promise<unknown> {
    const policy = step.retry;
    if (this.signal.aborted) throw this.signal.reason;
    // The step timeout cut the call short: it may have reached the service.
    if (!idempotent && err instanceof StepError && err.code === 'E_STEP_TIMEOUT') {
      throw outcomeUnknownError(path, step.uses, `timed out after ${step.timeoutMs} ms during its call`, err);
    }
    if (!isRetryable(err) || rec.attempts >= policy.attempts) throw err;
    const wait = retryDelay(err, policy, rec.attempts, this.deps.random);
    this.deps.logger.debug('retrying step', { execution: this.record.id, step: path, attempt: rec.attempts, waitMs: wait });
    // Checkpointed, so a host can show what the execution waits for (`emit --wait`).
    rec.retryAt = this.iso(this.deps.clock.now() + wait);
    await this.persist(rec);
    try {
      await this.deps.clock.sleep(wait, this.signal);
    } catch (sleepErr) {
      throw this.signal.aborted ? this.signal.reason : sleepErr;
    } finally {
      delete rec.retryAt;
    }
    return this.withRetry(step, rec, path, fn, idempotent);
  }

  private withTimeout(fn: (signal: AbortSignal) => Promise<unknown>, timeoutMs: number | undefined, path: string): Promise<unknown> {
    const execSignal = this.signal;
    // The step's signal: aborted by its timeout or with the execution's (timeout, interrupt).
    // Linked by hand and unlinked when the call settles: cheaper than AbortSignal.any per call.
    // A step without a timeout of its own takes the execution's signal as is (an
    // AbortController and its signal cost about 6 µs, the most of anything a step without I/O does).
    let signal = execSignal;
    let followExec: (() => void) | undefined;
    let cancelTimer: (() => void) | undefined;
    if (timeoutMs !== undefined) {
      const local = new AbortController();
      signal = local.signal;
      followExec = () => local.abort(execSignal.reason);
      if (execSignal.aborted) followExec();
      else execSignal.addEventListener('abort', followExec, { once: true });
      cancelTimer = setLongTimeout(() => local.abort(stepTimeoutError(path, timeoutMs)), timeoutMs);
    }
    const unlink = () => {
      cancelTimer?.();
      if (followExec) execSignal.removeEventListener('abort', followExec);
    };
    if (signal.aborted) {
      // Already aborted: the call is still made, and settles the step if it already has.
      const aborted = Promise.reject(signal.reason);
      let call: Promise<unknown>;
      try {
        call = fn(signal);
      } catch (err) {
        aborted.catch(() => {});
        unlink();
        return Promise.reject(err);
      }
      const settled = Promise.race([call, aborted]);
      settled.then(unlink, unlink);
      return settled;
    }
    // Settle on abort even when the action ignores its signal: the call or the abort, whichever
    // comes first, in the order a race of the two would see them (each settles one job later),
    // with one promise instead of the race's four.
    return new Promise<unknown>((resolve, reject) => {
      const onAbort = () => {
        unlink();
        queueMicrotask(() => reject(signal.reason));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      const settle = () => {
        signal.removeEventListener('abort', onAbort);
        unlink();
      };
      let call: Promise<unknown>;
      try {
        call = fn(signal);
      } catch (err) {
        settle();
        reject(err);
        return;
      }
      Promise.resolve(call).then(
        (value) => {
          settle();
          resolve(value);
        },
        (err) => {
          settle();
          reject(err);
        },
      );
    });
  }

  // ------------------------------------------------------------ control flow

  private async runIf(step: CompiledIfStep, frame: Frame, rec: StepRecord, ctx: Record<string, unknown>, path: string) {
    const condition = isTruthy(await this.render(step.if, ctx, step, path, '/if'));
    rec.inputs = { condition };
    await this.runSteps(condition ? step.then : step.else, frame);
    return { condition, branch: condition ? 'then' : step.else.length > 0 ? 'else' : null };
  }

  private async runBranch(step: CompiledBranchStep, frame: Frame, rec: StepRecord, ctx: Record<string, unknown>, path: string) {
    const matched: number[] = [];
    // `all`: every condition is read before any case runs, so cases do not steer each other.
    for (let i = 0; i < step.cases.length; i++) {
      const pass = isTruthy(await this.render(step.cases[i].when, ctx, step, path, `/branch/cases/${i}/when`));
      if (pass) {
        matched.push(i);
        if (step.mode === 'first') break;
      }
    }
    const names = matched.map((i) => step.cases[i].name ?? String(i));
    rec.inputs = { mode: step.mode, matched: names };
    for (const i of matched) await this.runSteps(step.cases[i].steps, frame);
    if (matched.length === 0) await this.runSteps(step.default, frame);
    return { matched: names, default: matched.length === 0 };
  }

  private async runEach(step: CompiledEachStep, frame: Frame, rec: StepRecord, ctx: Record<string, unknown>, path: string) {
    const list = await this.render(step.each, ctx, step, path, '/each');
    const items = list === undefined || list === null ? [] : Array.isArray(list) ? list : [list];
    rec.inputs = { count: items.length, concurrency: step.concurrency };
    const outputs: unknown[] = [];
    let next = 0;
    let stopped = false;
    let failure: unknown;

    const iterate = async (i: number) => {
      const iframe: Frame = {
        steps: { ...frame.steps },
        vars: { ...frame.vars, [step.as]: items[i], index: i },
        prefix: `${path}[${i}].`,
      };
      await this.runSteps(step.steps, iframe);
      const out: Record<string, unknown> = {};
      for (const [id, scope] of Object.entries(iframe.steps)) if (frame.steps[id] !== scope) out[id] = scope.output;
      outputs[i] = out;
    };
    // Takes the next item unless `stop` says to end the loop there (checked before each item).
    const take = async (): Promise<number | undefined> => {
      if (stopped || failure !== undefined || next >= items.length) return undefined;
      const i = next++;
      if (step.stop) {
        const sctx = { ...this.context(frame), [step.as]: items[i], index: i };
        if (isTruthy(await this.render(step.stop, sctx, step, path, '/stop'))) {
          stopped = true;
          return undefined;
        }
      }
      return i;
    };
    const worker = async () => {
      for (let i = await take(); i !== undefined; i = await take()) {
        try {
          await iterate(i);
        } catch (err) {
          failure ??= err;
          if (err instanceof CheckpointError || err instanceof FilteredSignal || err instanceof ExecutionInterruptedError) failure = err;
          return;
        }
      }
    };
    const width = Math.min(step.concurrency, Math.max(1, items.length));
    if (width > 1) this.allowManyListeners();
    await Promise.all(Array.from({ length: width }, worker));
    if (failure !== undefined) throw failure;
    rec.inputs = { ...(rec.inputs as object), ran: outputs.length, stopped };
    return outputs;
  }

  private async runDelay(step: CompiledDelayStep, rec: StepRecord, ctx: Record<string, unknown>, path: string) {
    let ms: number | undefined;
    if (typeof step.delay === 'number') ms = step.delay;
    else {
      const value = await this.render(step.delay, ctx, step, path, '/delay');
      ms = tryParseDuration(value);
      if (ms === undefined) {
        throw new StepError(`step "${path}": delay ${JSON.stringify(value)} is not a duration`, {
          code: 'E_DURATION',
          hint: 'The delay must resolve to a duration like 250ms, 5s or 2m, or a number of milliseconds.',
        });
      }
    }
    rec.inputs = { ms };
    rec.attempts += 1;
    try {
      await this.deps.clock.sleep(ms, this.signal);
    } catch (err) {
      throw this.signal.aborted ? this.signal.reason : err;
    }
    return { ms };
  }

  /**
   * A `code:` step: the sandbox is imported on first use only (workflows without code
   * steps never load QuickJS). `console.log` lines go to the step record's `logs`.
   */
  private async runCode(step: CompiledCodeStep, rec: StepRecord, frame: Frame, path: string): Promise<unknown> {
    const sandbox = await (this.deps.codeSandbox ?? (await import('./code-sandbox.js')).sharedCodeSandbox)();
    const steps: Record<string, unknown> = {};
    for (const [id, scope] of Object.entries(frame.steps)) steps[id] = scope.error ? { error: scope.error } : { output: scope.output };
    rec.attempts += 1;
    try {
      // The step's `timeout` sets the time limit (default 1 s, at most 5 s: the call holds the event loop).
      const cpuMs = Math.min(step.timeoutMs ?? 1000, 5000);
      const result = await sandbox.run(step.code, {
        event: this.record.event,
        steps,
        config: this.deps.config ?? {},
        user: this.base.user,
        execution: this.base.execution,
        vars: frame.vars,
      }, { cpuMs });
      if (result.logs.length > 0) rec.logs = result.logs.map((l) => this.redactor.text(l));
      return result.value;
    } catch (err) {
      const logs = (err as { logs?: string[] }).logs;
      if (logs && logs.length > 0) rec.logs = logs.map((l) => this.redactor.text(l));
      throw err;
    }
  }

  private async runStop(step: CompiledStopStep, rec: StepRecord, ctx: Record<string, unknown>, path: string): Promise<never> {
    const value = await this.render(step.stop, ctx, step, path, '/stop');
    const reason = this.redactor.text(typeof value === 'string' ? value : JSON.stringify(value ?? null));
    rec.inputs = { reason };
    rec.output = { reason };
    rec.attempts += 1;
    throw new FilteredSignal(reason);
  }
}
