/**
 * The contract between the engine and connectors. A connector is data (its manifest:
 * auth, connection fields, actions with input schemas, triggers) plus small code (action
 * implementations, webhook verification). The engine passes everything a call needs in
 * ActionContext; connectors hold no global state.
 */
import type { AppSettings, ConnectorManifest } from '../core/model.js';

export interface HttpRequest {
  method: string;
  url: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  signal?: AbortSignal;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  /** Raw body text. */
  text: string;
}

/** Outbound HTTP, passed in (undici in production, the same in tests against 127.0.0.1). */
export type HttpClient = (req: HttpRequest) => Promise<HttpResponse>;

export interface ConnectorLogger {
  debug(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
}

export interface ActionContext {
  /** Resolved connection fields for the execution's user (credentials included: never log them). */
  connection: Record<string, string>;
  /** Per-app settings from the project config (apiVersion, baseUrl override). */
  settings: AppSettings;
  /**
   * Stable per execution and step (`<executionId>:<stepPath>`); sent as Idempotency-Key. It
   * protects only services that honour that header (Shopify's Admin GraphQL does not): an
   * action that must not run twice is declared `idempotent: false` in its manifest.
   */
  idempotencyKey: string;
  signal: AbortSignal;
  http: HttpClient;
  logger: ConnectorLogger;
  /** Injected clock and sleep so throttling waits are testable. */
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/**
 * An action implementation. It throws errors.StepError on failure, with `retryable`
 * (network, 408, 429, 5xx, GraphQL THROTTLED), `status`, and `retryAfterMs` when the
 * server said how long to wait; the engine owns the retry loop.
 */
export type ActionHandler = (input: Record<string, unknown>, ctx: ActionContext) => Promise<unknown>;

export interface WebhookDelivery {
  rawBody: Buffer;
  /** Lower-cased header names. */
  headers: Record<string, string | undefined>;
}

export interface WebhookCheck {
  ok: boolean;
  /** Why it failed, naming the header: "missing X-Shopify-Hmac-Sha256", "signature mismatch". */
  reason?: string;
  /** 400 for a missing required header, 401 for a bad signature. */
  status?: number;
  topic?: string;
  deliveryId?: string;
}

export interface ConnectorRuntime {
  manifest: ConnectorManifest;
  actions: Record<string, ActionHandler>;
  /** Verifies an inbound delivery over its raw bytes, comparing in constant time. */
  verifyWebhook?(delivery: WebhookDelivery, connection: Record<string, string>): WebhookCheck;
}

/** Looks connectors up by name: built-ins plus the project's connectors/*.yaml. */
export interface ConnectorRegistry {
  get(name: string): ConnectorRuntime | undefined;
  names(): string[];
}
