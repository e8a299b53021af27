import Ajv2020Module from 'ajv/dist/2020.js';
import { createHttpClient } from '../../src/connectors/http-client.js';
import type { ActionContext } from '../../src/connectors/types.js';
import type { AppSettings } from '../../src/core/model.js';

// ajv is CommonJS; under NodeNext its class arrives under `.default`.
const Ajv2020 = ((Ajv2020Module as unknown as { default?: unknown }).default ?? Ajv2020Module) as typeof Ajv2020Module.default;

export interface TestContext extends ActionContext {
  sleeps: number[];
  logs: { level: string; message: string; fields?: Record<string, unknown> }[];
}

/** An ActionContext with the real undici client, a fixed clock and a sleep that only records. */
export function makeContext(options: {
  connection?: Record<string, string>;
  settings?: AppSettings;
  idempotencyKey?: string;
  nowMs?: number;
  timeoutMs?: number;
} = {}): TestContext {
  const sleeps: number[] = [];
  const logs: TestContext['logs'] = [];
  const nowMs = options.nowMs ?? Date.parse('2026-01-15T10:00:00Z');
  return {
    connection: options.connection ?? {},
    settings: options.settings ?? {},
    idempotencyKey: options.idempotencyKey ?? 'exec-1:order',
    signal: new AbortController().signal,
    http: createHttpClient({ timeoutMs: options.timeoutMs ?? 5000 }),
    logger: {
      debug: (message, fields) => logs.push({ level: 'debug', message, fields }),
      warn: (message, fields) => logs.push({ level: 'warn', message, fields }),
    },
    now: () => nowMs,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    sleeps,
    logs,
  };
}

/** Runs `fn` and returns what it threw (fails the test when nothing was thrown). */
export async function thrown(fn: () => Promise<unknown>): Promise<any> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to throw');
}

/** ajv for draft 2020-12 in strict mode, as the validator uses it. */
export function strictAjv(): InstanceType<typeof Ajv2020> {
  return new Ajv2020({ strict: true, allErrors: true });
}
