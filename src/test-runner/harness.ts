/**
 * One execution through the real engine with every side effect answered by the test: a
 * virtual clock (sleeps advance it instantly), seeded randomness, action answers in place
 * of connector calls, and an HttpClient that answers from `http` entries, the in-process
 * fake of the app, or the stream receiver. A request nothing answers is recorded and fails
 * its step with E_TEST_UNANSWERED: tests never touch the network.
 *
 * `alloy test`, `alloy compare` and `alloy replay --version` all run executions this way.
 */
import { isSecretKey } from '../engine/redact.js';
import { compileWorkflow, type CompiledWorkflow } from '../engine/compile.js';
import { createExecutionRecord, executeWorkflow } from '../engine/execute.js';
import type { Clock, EngineDeps, EngineLogger } from '../engine/types.js';
import type { ActionHandler, ConnectorRegistry, ConnectorRuntime, HttpClient, HttpRequest, HttpResponse } from '../connectors/types.js';
import type { AppSettings, WorkflowDef } from '../core/model.js';
import { StepError } from '../errors.js';
import type { FakeShopify } from '../testing/fake-shopify.js';
import type { AnswerDef, AnsweredCall, HarnessResult, HttpAnswerDef, SeenRequest, TestSetup } from './types.js';

export const DEFAULT_TEST_CLOCK = '2026-01-01T00:00:00.000Z';
const DEFAULT_START = Date.parse(DEFAULT_TEST_CLOCK);

export interface HarnessInput {
  compiled: CompiledWorkflow;
  /** `<integration>/<workflow>`. */
  workflow: string;
  executionId: string;
  version?: string;
  event: unknown;
  setup: TestSetup;
  connectors: ConnectorRegistry;
  settings?: Record<string, AppSettings>;
}

const silent: EngineLogger = { debug() {}, info() {}, warn() {} };
const half = () => 0.5;
const SETTLED: Promise<void> = Promise.resolve();

/** A clock that starts at `start` and moves only when something sleeps. */
export function virtualClock(start: number): Clock {
  let t = start;
  return {
    now: () => t,
    sleep: async (ms, signal) => {
      if (signal?.aborted) throw signal.reason;
      t += Math.max(0, ms);
      await Promise.resolve();
    },
  };
}

let fakeModule: Promise<typeof import('../testing/fake-shopify.js')> | undefined;

/** Runs one execution; never touches the network. */
export async function runHarness(input: HarnessInput): Promise<HarnessResult> {
  const { setup } = input;
  const start = setup.clock === undefined ? DEFAULT_START : Date.parse(setup.clock);
  const clock = virtualClock(Number.isNaN(start) ? DEFAULT_START : start);
  const requests: SeenRequest[] = [];
  const unanswered: SeenRequest[] = [];
  const calls: AnsweredCall[] = [];
  let stream: Record<string, unknown> | undefined;

  let fake: FakeShopify | undefined;
  if (setup.fake?.app === 'shopify') {
    fakeModule ??= import('../testing/fake-shopify.js');
    const { startFakeShopify } = await fakeModule;
    fake = await startFakeShopify({ listen: false, now: clock.now, customers: setup.fake.customers as never });
    if (setup.fake.failNext) fake.failNext(setup.fake.failNext, { retryAfter: '1' });
  }

  const httpAnswers = (setup.http ?? []).map((a) => ({ def: a, left: a.times ?? Infinity }));
  const streamMessageId = `msg_${input.executionId}`;

  const http: HttpClient = async (req: HttpRequest): Promise<HttpResponse> => {
    const body = req.body === undefined ? '' : typeof req.body === 'string' ? req.body : Buffer.from(req.body).toString('utf8');
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers ?? {})) headers[k.toLowerCase()] = v;
    const seen: SeenRequest = { method: req.method.toUpperCase(), url: req.url, headers: redactHeaders(headers), body, answeredBy: 'none' };
    try {
      seen.json = body ? JSON.parse(body) : undefined;
    } catch {
      /* not JSON */
    }
    requests.push(seen);
    const respond = (by: SeenRequest['answeredBy'], status: number, h: Record<string, string>, text: string): HttpResponse => {
      seen.answeredBy = by;
      seen.status = status;
      return { status, headers: h, text };
    };
    if (headers['webhook-id'] === streamMessageId) {
      stream = seen.json as Record<string, unknown>;
      return respond('stream', setup.stream?.status ?? 200, {}, '');
    }
    const entry = httpAnswers.find((a) => a.left > 0 && matchesRequest(a.def, seen.method, req.url));
    if (entry) {
      entry.left -= 1;
      const d = entry.def;
      const text = d.body === undefined ? '' : typeof d.body === 'string' ? d.body : JSON.stringify(d.body);
      const h = { ...(typeof d.body === 'object' && d.body !== null ? { 'content-type': 'application/json' } : {}), ...lower(d.headers ?? {}) };
      return respond('http', d.status ?? 200, h, text);
    }
    if (fake && new URL(req.url).pathname.startsWith('/admin/api/')) {
      const out = fake.handle({ method: req.method, url: req.url, headers, body });
      return respond('fake', out.status, out.headers, out.body);
    }
    unanswered.push(seen);
    throw new StepError(`no test answers ${seen.method} ${req.url}`, {
      code: 'E_TEST_UNANSWERED',
      retryable: false,
      hint: 'answer it in the test: `answers: { <app>/<action>: { returns: … } }`, an `http:` entry for this URL, or `fake: { app: shopify }`',
    });
  };

  const connectors = withAnswers(input.connectors, setup.answers ?? {}, input.executionId, calls);
  const record = createExecutionRecord(
    { id: input.executionId, workflow: input.workflow, version: input.version, userId: setup.user, event: input.event },
    clock.now(),
  );
  const deps: EngineDeps = {
    connectors,
    http,
    clock,
    random: half,
    // Nothing to persist: one settled promise serves every checkpoint.
    checkpoint: () => SETTLED,
    logger: silent,
    resolveConnection: async (app) => connectionFor(input.connectors.get(app), setup, fake),
    settings: withoutBaseUrls(input.settings),
    secrets: setup.secrets ?? {},
    env: setup.env ?? {},
  };
  try {
    await executeWorkflow(input.compiled, record, deps);
  } finally {
    if (fake) await fake.close();
  }
  return { record, requests, calls, stream, unanswered };
}

/**
 * Tests see the app's real URLs whatever `apps.<app>.baseUrl` says: an override points dev
 * at a local fake, and a test's expectations must not depend on where that runs.
 */
function withoutBaseUrls(settings: Record<string, AppSettings> | undefined): Record<string, AppSettings> | undefined {
  if (!settings) return undefined;
  // Once per settings object (a run's tests share the project's), not once per test.
  let out = withoutBaseUrlsCache.get(settings);
  if (!out) {
    out = Object.freeze(Object.fromEntries(Object.entries(settings).map(([app, s]) => [app, Object.freeze({ ...s, baseUrl: undefined })])));
    withoutBaseUrlsCache.set(settings, out);
  }
  return out;
}
const withoutBaseUrlsCache = new WeakMap<Record<string, AppSettings>, Record<string, AppSettings>>();

/** Compiles once per definition object (a test file's tests share their workflow). */
const compiledCache = new WeakMap<WorkflowDef, CompiledWorkflow>();
export function compiledFor(def: WorkflowDef): CompiledWorkflow {
  let c = compiledCache.get(def);
  if (!c) {
    c = compileWorkflow(def);
    compiledCache.set(def, c);
  }
  return c;
}

/** `url` exact, or a prefix when it ends in `*`; `method` case-insensitive when given. */
export function matchesRequest(def: { method?: string; url?: string }, method: string, url: string): boolean {
  if (def.method && def.method.toUpperCase() !== method.toUpperCase()) return false;
  if (def.url === undefined) return true;
  return def.url.endsWith('*') ? url.startsWith(def.url.slice(0, -1)) : url === def.url;
}

function lower(h: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) out[k.toLowerCase()] = v;
  return out;
}

const AUTH_HEADERS = new Set(['authorization', 'x-shopify-access-token', 'cookie', 'proxy-authorization']);
/** Credentials never reach results, reports or recorded files. */
function redactHeaders(h: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) out[k] = AUTH_HEADERS.has(k) || isSecretKey(k) ? '[redacted]' : v;
  return out;
}

/**
 * The connection a test's action sees: its `credentials`, over the fake's own shop and
 * token, over each field's default, over a `test-<field>` placeholder. Never .env.
 */
function connectionFor(runtime: ConnectorRuntime | undefined, setup: TestSetup, fake: FakeShopify | undefined): Record<string, string> {
  if (!runtime) return {};
  const out = { ...placeholdersOf(runtime.manifest) };
  if (fake && runtime.manifest.name === 'shopify') {
    out.shop = fake.shop;
    out.accessToken = fake.accessToken;
  }
  const given = setup.credentials?.[runtime.manifest.name];
  return given ? Object.assign(out, given) : out;
}

/** Each field's default, else a `test-<field>` placeholder: once per manifest, not per action call. */
const placeholders = new WeakMap<ConnectorRuntime['manifest'], Readonly<Record<string, string>>>();
function placeholdersOf(manifest: ConnectorRuntime['manifest']): Readonly<Record<string, string>> {
  let out = placeholders.get(manifest);
  if (!out) {
    const p: Record<string, string> = {};
    for (const [field, spec] of Object.entries(manifest.connection ?? {})) p[field] = typeof spec?.default === 'string' ? spec.default : `test-${field}`;
    out = Object.freeze(p);
    placeholders.set(manifest, out);
  }
  return out;
}

/**
 * Wraps the registry: an action with an answer (by step path, else by `app/action`) returns
 * or throws that answer instead of calling the connector. Lists are used in order; the
 * last answer repeats.
 */
function withAnswers(registry: ConnectorRegistry, answers: Record<string, AnswerDef | AnswerDef[]>, executionId: string, calls: AnsweredCall[]): ConnectorRegistry {
  if (isEmpty(answers)) return registry;
  const used = new Map<string, number>();
  const wrapped = new Map<string, ConnectorRuntime>();
  // Idempotency keys are `<execution id>:<step path>`.
  const stepOf = (key: string) => (key.length > executionId.length && key.charCodeAt(executionId.length) === 58 && key.startsWith(executionId) ? key.slice(executionId.length + 1) : '');
  return {
    names: () => registry.names(),
    get(name) {
      const runtime = registry.get(name);
      if (!runtime) return undefined;
      let w = wrapped.get(name);
      if (!w) {
        const actions: Record<string, ActionHandler> = {};
        for (const [action, uses] of actionNames(name, runtime)) {
          const handler = runtime.actions[action];
          actions[action] = async (input, ctx) => {
            const step = stepOf(ctx.idempotencyKey);
            const key = step in answers ? step : uses in answers ? uses : undefined;
            if (key === undefined) return handler(input, ctx);
            const given = answers[key];
            const n = used.get(key) ?? 0;
            used.set(key, n + 1);
            calls.push({ step, action: uses, input });
            return applyAnswer(Array.isArray(given) ? given[Math.min(n, given.length - 1)] : given, uses);
          };
        }
        w = { ...runtime, actions };
        wrapped.set(name, w);
      }
      return w;
    },
  };
}

/** `[action, "<app>/<action>"]` of a runtime, once per runtime rather than per test. */
const actionNamesCache = new WeakMap<ConnectorRuntime, [string, string][]>();
function actionNames(name: string, runtime: ConnectorRuntime): [string, string][] {
  let out = actionNamesCache.get(runtime);
  if (!out) {
    out = Object.keys(runtime.actions).map((a) => [a, `${name}/${a}`]);
    actionNamesCache.set(runtime, out);
  }
  return out;
}

function isEmpty(o: object): boolean {
  for (const _ in o) return false;
  return true;
}

function applyAnswer(a: AnswerDef, uses: string): unknown {
  if (a.error) {
    throw new StepError(a.error.message ?? `${uses} failed (${a.error.code})`, { code: a.error.code, retryable: a.error.retryable ?? false });
  }
  if (a.status !== undefined) {
    const retryable = a.status === 408 || a.status === 429 || a.status >= 500;
    throw new StepError(`${uses}: HTTP ${a.status}`, {
      code: a.status === 429 ? 'E_RATE_LIMITED' : 'E_HTTP_STATUS',
      status: a.status,
      retryable,
      ...(a.retryAfter !== undefined ? { retryAfterMs: a.retryAfter * 1000 } : {}),
    });
  }
  return a.returns;
}

export type { HttpAnswerDef };
