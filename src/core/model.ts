/**
 * The definitions users write, as TypeScript types. The JSON Schemas in schemas/ are the
 * source of truth for the file format; test/schema-model-sync.test.ts fails when the two
 * drift (every schema property must be a key of these types and the reverse).
 *
 * Template strings: any string value may hold JSONata expressions inside `{{ }}` (see
 * core/expressions.ts). A string that is exactly one expression keeps the value's type.
 */

export type JsonSchema = Record<string, unknown>;
/** "250ms", "5s", "2m", "1h", or a number of milliseconds. */
export type Duration = string | number;
export type Template = string;

export const API_VERSION = 'alloy/v1';

// ---------------------------------------------------------------- project config

export interface ProjectConfig {
  apiVersion?: typeof API_VERSION;
  kind?: 'Project';
  name: string;
  /** Folder of integrations, relative to the config file. Default `integrations`. */
  integrationsDir?: string;
  /** Folder of user connectors. Default `connectors`. */
  connectorsDir?: string;
  /** Local store folder. Default `.alloy/store`. */
  store?: { path?: string };
  /** Named remote stores (`alloy serve`); the token comes from ALLOY_TOKEN, never this file. */
  remotes?: Record<string, { url: string }>;
  /** `alloy dev` settings; `fakes` as with --fake (e.g. [shopify]). */
  dev?: { port?: number; host?: string; fakes?: string[]; shopifyMaxAge?: string | number };
  /** Bounds on each expression evaluation: `expressionTime` (duration, default 1s), `expressionMemory` (size, default 64mb). */
  limits?: { expressionTime?: Duration; expressionMemory?: number | string };
  /** Outbound connections: addresses (IPs, CIDR ranges) allowed despite the default refusals. */
  egress?: { allow?: string[] };
  /** Per-app settings, e.g. `shopify: { apiVersion: "2025-07", baseUrl: "http://127.0.0.1:4010" }`. */
  apps?: Record<string, AppSettings>;
  /** `alloy release` runs the project's tests first unless `test: false`. */
  release?: { test?: boolean };
  /** `alloy serve`: PostgreSQL for state and store (as --database) and its schema (as --schema). */
  serve?: { database?: string; schema?: string; oauth?: { redirectOrigins?: string[] } };
}

export interface AppSettings {
  apiVersion?: string;
  /** Override the app's API base URL (used to point tests at a local fake). */
  baseUrl?: string;
}

// ---------------------------------------------------------------- integration

export interface IntegrationDef {
  apiVersion: typeof API_VERSION;
  kind: 'Integration';
  name: string;
  /** The app this integration is built around (a connector name, e.g. `shopify`). */
  app: string;
  description?: string;
  /** Other connectors the workflows may use besides `app`, `http` and `transform`. */
  connectors?: string[];
  /** Per-installation variables (`alloy serve`), read by workflows as `{{ config.<name> }}`. */
  config?: Record<string, ConfigVariable>;
}

/** A JSON Schema for one value, plus `secret` (never echoed, sealed at rest) and `required`. */
export type ConfigVariable = JsonSchema & { secret?: boolean; required?: boolean; default?: unknown; description?: string };

// ---------------------------------------------------------------- workflow

export interface WorkflowDef {
  apiVersion: typeof API_VERSION;
  kind: 'Workflow';
  name: string;
  description?: string;
  trigger: Trigger;
  steps: Step[];
  /** Stream execution data, signed with Standard Webhooks, to the customer's server. */
  stream?: StreamSettings;
  /** Upper bound for the whole execution. */
  timeout?: Duration;
}

/** A custom event your product sends (named, with a JSON Schema for its data). */
export interface CustomEventTrigger {
  event: string;
  schema?: JsonSchema;
}
/** An app event delivered by webhook, e.g. `{ app: shopify, event: orders/create }`. */
export interface AppEventTrigger {
  app: string;
  event: string;
  /** For a trigger the connector polls (no webhook): interval and start. */
  poll?: PollSettings;
}
export interface PollSettings {
  /** Default: the connector trigger's `poll.every`. */
  every?: Duration;
  /** `now` (default): items changed after the first poll; or an ISO time. */
  since?: string;
}
/** A generic inbound webhook at /v1/webhooks/custom/<webhook>. */
export interface WebhookTrigger {
  webhook: string;
  schema?: JsonSchema;
  verify?: WebhookVerification;
}
export interface ScheduleTrigger {
  /** A cron expression (5 fields, or 6 with seconds first), or an object form (core/schedule.ts). */
  schedule: string | ScheduleObject;
}
export interface ScheduleObject {
  cron?: string;
  /** IANA zone name; default UTC. */
  timezone?: string;
  /** An interval such as 15m, aligned to the epoch. */
  every?: Duration;
  /** Ticks missed while down: `latest` (default) runs the last one once; `skip`; `all` (capped). */
  missed?: 'latest' | 'skip' | 'all';
}
export type Trigger = CustomEventTrigger | AppEventTrigger | WebhookTrigger | ScheduleTrigger;

export interface WebhookVerification {
  scheme: 'hmac-sha256' | 'standard-webhooks';
  /** Header holding the signature (hmac-sha256 only). */
  header?: string;
  encoding?: 'hex' | 'base64';
  /** Template resolving to the secret, e.g. `{{ secrets.ACME_WEBHOOK_SECRET }}`. */
  secret: Template;
}

export interface StreamSettings {
  url: Template;
  /** `whsec_<base64>` secret, normally `{{ secrets.NAME }}`. */
  secret: Template;
  retry?: RetryPolicy;
  timeout?: Duration;
}

export interface RetryPolicy {
  /** Total attempts including the first. Default 1 for steps, 5 for streams. */
  attempts?: number;
  /** First backoff ceiling; each next one doubles (factor), capped at maxDelay. Full jitter. */
  initialDelay?: Duration;
  maxDelay?: Duration;
  factor?: number;
}

export type OnError = 'fail' | 'continue' | { steps: Step[] };

/** Keys every step may have. */
export interface StepBase {
  id: string;
  name?: string;
  /** Run the step only when this is truthy; otherwise it is `skipped`. */
  when?: Template;
  retry?: RetryPolicy;
  timeout?: Duration;
  onError?: OnError;
}

/** `uses: shopify/createOrder`, `uses: http`, `uses: transform`, or a user connector's action. */
export interface ActionStep extends StepBase {
  uses: string;
  with?: Record<string, unknown>;
}
export interface IfStep extends StepBase {
  if: Template;
  then: Step[];
  else?: Step[];
}
export interface BranchStep extends StepBase {
  branch: {
    /** `first`: the first case whose `when` passes; `all`: every case that passes. Default `first`. */
    mode?: 'first' | 'all';
    cases: { name?: string; when: Template; steps: Step[] }[];
    default?: Step[];
  };
}
export interface EachStep extends StepBase {
  each: Template;
  /** Name of the current item in expressions. Default `item`; its position is `index`. */
  as?: string;
  concurrency?: number;
  /** Checked before each item; when truthy the loop ends there. */
  stop?: Template;
  steps: Step[];
}
export interface DelayStep extends StepBase {
  delay: Duration | Template;
}
/** End the execution as `filtered` (not failed); the value is the reason. */
export interface StopStep extends StepBase {
  stop: Template;
}

/**
 * JavaScript run in a sandbox (QuickJS compiled to WebAssembly): the body of a function that
 * reads `event`, `steps`, `config` (plus `user`, `execution`) and returns JSON.
 */
export interface CodeStep extends StepBase {
  code: string;
}

export type Step = ActionStep | IfStep | BranchStep | EachStep | DelayStep | StopStep | CodeStep;
export type StepKind = 'action' | 'if' | 'branch' | 'each' | 'delay' | 'stop' | 'code';

/** The key that decides a step's kind. EachStep also uses `stop`, so `each` wins over `stop`. */
/**
 * Names every plain object has (`constructor`, `toString`, `__proto__`, …): not step ids. The
 * engine keeps steps by id in plain objects, where such a step is found before it has run.
 */
export const RESERVED_STEP_IDS: ReadonlySet<string> = new Set(Object.getOwnPropertyNames(Object.prototype));

export function stepKind(step: Step): StepKind | undefined {
  const s = step as unknown as Record<string, unknown>;
  if ('uses' in s) return 'action';
  if ('if' in s) return 'if';
  if ('branch' in s) return 'branch';
  if ('each' in s) return 'each';
  if ('delay' in s) return 'delay';
  if ('stop' in s) return 'stop';
  if ('code' in s) return 'code';
  return undefined;
}

/** The nested step lists of a step, with the JSON pointer suffix of each. */
export function childStepLists(step: Step): { pointer: string; steps: Step[] }[] {
  const out: { pointer: string; steps: Step[] }[] = [];
  const s = step as unknown as Record<string, unknown>;
  if (Array.isArray(s.then)) out.push({ pointer: '/then', steps: s.then as Step[] });
  if (Array.isArray(s.else)) out.push({ pointer: '/else', steps: s.else as Step[] });
  if ('each' in s && Array.isArray(s.steps)) out.push({ pointer: '/steps', steps: s.steps as Step[] });
  const branch = s.branch as BranchStep['branch'] | undefined;
  if (branch && typeof branch === 'object') {
    (branch.cases ?? []).forEach((c, i) => {
      if (Array.isArray(c?.steps)) out.push({ pointer: `/branch/cases/${i}/steps`, steps: c.steps });
    });
    if (Array.isArray(branch.default)) out.push({ pointer: '/branch/default', steps: branch.default });
  }
  const onError = s.onError as OnError | undefined;
  if (onError && typeof onError === 'object' && Array.isArray(onError.steps)) {
    out.push({ pointer: '/onError/steps', steps: onError.steps });
  }
  return out;
}

// ---------------------------------------------------------------- connector manifest

export interface ConnectorManifest {
  apiVersion: typeof API_VERSION;
  kind: 'Connector';
  name: string;
  description?: string;
  /** Base URL for requests; a template over `connection`, e.g. `https://{{ connection.shop }}/admin`. */
  baseUrl: Template;
  auth: ConnectorAuth;
  /** Connection fields per user (credentials and settings), read from env/.env or a users file. */
  connection?: Record<string, ConnectionField>;
  actions?: Record<string, ConnectorAction>;
  triggers?: Record<string, ConnectorTrigger>;
}

export interface ConnectionField {
  description?: string;
  /** Environment variable it is read from in local runs. */
  env?: string;
  secret?: boolean;
  required?: boolean;
  default?: string;
}

export interface ConnectorAuth {
  type: 'none' | 'bearer' | 'header' | 'basic';
  /** For `header`: the header name; value from `value`. */
  header?: string;
  /** Template over `connection`, e.g. `{{ connection.token }}`. */
  value?: Template;
  username?: Template;
  password?: Template;
}

export interface ConnectorAction {
  description?: string;
  input?: JsonSchema;
  /** Declarative HTTP request; templates see `input` and `connection`. */
  request?: {
    method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
    path: Template;
    headers?: Record<string, Template>;
    query?: Record<string, Template>;
    body?: unknown;
  };
  /** Template over `response` (`status`, `headers`, `body`); default the body. */
  output?: unknown;
  /** A list action that pages: every page is fetched (up to `maxPages`) and the outputs concatenated. */
  paginate?: Pagination;
  /**
   * `false` when calling the action twice may apply it twice (e.g. Shopify orderCreate, which
   * takes no idempotency key). The engine then never calls it again for a step whose first
   * call may have reached the service: such a step fails with E_OUTCOME_UNKNOWN instead.
   * Default (absent): safe to call again with the same idempotency key.
   */
  idempotent?: boolean;
}

export interface ConnectorTrigger {
  description?: string;
  payload?: JsonSchema;
  verify?: WebhookVerification;
  /** Header carrying the delivery id used to de-duplicate. */
  dedupeHeader?: string;
  /** Header carrying the topic, for routing. */
  topicHeader?: string;
  /** Header naming the account that sent it (Shopify: the shop domain); `alloy serve` routes by it. */
  accountHeader?: string;
  /** This topic means the account removed the app: `alloy serve` deactivates its installations. */
  uninstalls?: boolean;
  /** With `uninstalls`: the body field that must name the same account (the signature covers the body, not the topic header). */
  uninstallAccountField?: string;
  /** The trigger is polled (the app sends no webhook for it): see ConnectorPoll. */
  poll?: ConnectorPoll;
}

/**
 * A polled trigger: a request listing items changed since a cursor time, paged per
 * `paginate`, each item becoming one execution. Templates see `connection`, `since` (ISO
 * time, the cursor) and `page` (the pagination state).
 */
export interface ConnectorPoll {
  /** Default interval. */
  every: Duration;
  request: NonNullable<ConnectorAction['request']>;
  /** JSONata over `response` (`status`, `headers`, `body`) giving the list of items. */
  items: Template;
  /** Field of an item holding its id. */
  id: string;
  /** Field of an item holding its change time (ISO); the cursor advances to the latest seen. */
  updatedAt: string;
  paginate?: Pagination;
}

/**
 * How a list is paged: `cursor` (GraphQL pageInfo { hasNextPage endCursor }, the cursor
 * passed back as a variable), `link` (RFC 8288 `Link: <...>; rel="next"`, Shopify REST and
 * GitHub style), or `offset` (limit/offset query parameters).
 */
export interface Pagination {
  style: 'cursor' | 'link' | 'offset';
  /** cursor: JSONata over `response` giving pageInfo, e.g. `{{ response.body.data.orders.pageInfo }}`. */
  pageInfo?: Template;
  /** offset: query parameter names and page size. */
  limitParam?: string;
  offsetParam?: string;
  pageSize?: number;
  /** The most pages one run (a poll, or a list action) reads. Default 40. */
  maxPages?: number;
}
