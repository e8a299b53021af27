import { afterEach, describe, expect, it } from 'vitest';
import { backoffCeiling, backoffDelay, compileWorkflow, createExecutionRecord, executeWorkflow, parseRetryAfter, resolveRetryPolicy, STEP_RETRY_DEFAULTS } from '../../src/engine/index.js';
import type { WorkflowDef } from '../../src/core/model.js';
import { fakeClock, json, makeDeps, seededRandom, startServer, workflow, type TestServer } from './helpers.js';

let servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

async function run(def: WorkflowDef, deps = makeDeps()) {
  const record = createExecutionRecord({ id: 'exec_r', workflow: 'acme/retry', event: {} }, deps.clock.now());
  return executeWorkflow(compileWorkflow(def), record, deps);
}

/** Answers the scripted statuses in turn (then 200). */
async function scripted(script: { status: number; headers?: Record<string, string> }[]) {
  const server = await startServer((req, res) => {
    const next = script.shift();
    if (next) json(res, next.status, { error: next.status }, next.headers);
    else json(res, 200, { ok: true, key: req.headers['idempotency-key'] });
  });
  servers.push(server);
  return server;
}

describe('parseRetryAfter (RFC 9110 §10.2.3)', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  it('reads delay-seconds and HTTP-dates', () => {
    expect(parseRetryAfter('7', now)).toBe(7000);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Wed, 31 Dec 2025 23:59:00 GMT', now)).toBe(0);
  });
  it('ignores what it cannot read', () => {
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter('-5', now)).toBeUndefined();
    expect(parseRetryAfter('1.5s', now)).toBeUndefined();
    expect(parseRetryAfter('9'.repeat(400), now)).toBeUndefined();
  });

  it("reads fractional seconds, as Shopify's REST API sends them (Retry-After: 2.0)", () => {
    expect(parseRetryAfter('2.0', now)).toBe(2000);
    expect(parseRetryAfter('1.5', now)).toBe(1500);
  });
});

describe('backoff with full jitter', () => {
  it('stays within [0, min(maxDelay, initial*factor^(n-1))) with a seeded random', () => {
    const policy = resolveRetryPolicy({ attempts: 10, initialDelay: '100ms', maxDelay: '1s', factor: 2 }, STEP_RETRY_DEFAULTS);
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffCeiling(policy, n))).toEqual([100, 200, 400, 800, 1000, 1000]);
    const random = seededRandom(7);
    const seen = new Set<number>();
    for (let round = 0; round < 50; round++) {
      for (let n = 1; n <= 6; n++) {
        const d = backoffDelay(policy, n, random);
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThan(backoffCeiling(policy, n));
        seen.add(d);
      }
    }
    expect(seen.size).toBeGreaterThan(100); // jitter, not a fixed schedule
    expect(backoffDelay(policy, 3, () => 0.5)).toBe(200);
  });
});

describe('step retries against a real server', () => {
  it('retries 5xx with jittered backoff and keeps the idempotency key', async () => {
    const server = await scripted([{ status: 503 }, { status: 500 }]);
    const clock = fakeClock();
    const deps = makeDeps({ clock, random: () => 0.5 });
    const r = await run(workflow([{ id: 'call', uses: 'http', retry: { attempts: 4, initialDelay: '1s' }, with: { url: server.url } }]), deps);
    expect(r.status).toBe('succeeded');
    expect(r.steps.call.attempts).toBe(3);
    expect(server.requests).toHaveLength(3);
    expect(clock.sleeps).toEqual([500, 1000]);
    expect(new Set(server.requests.map((q) => q.headers['idempotency-key']))).toEqual(new Set(['exec_r:call']));
  });

  it('honours Retry-After in seconds on 429', async () => {
    const server = await scripted([{ status: 429, headers: { 'retry-after': '3' } }]);
    const clock = fakeClock();
    const r = await run(workflow([{ id: 'call', uses: 'http', retry: { attempts: 3 }, with: { url: server.url } }]), makeDeps({ clock }));
    expect(r.status).toBe('succeeded');
    expect(clock.sleeps).toEqual([3000]);
  });

  it('honours Retry-After as an HTTP-date', async () => {
    const clock = fakeClock(Date.parse('2026-01-01T00:00:00Z'));
    const server = await scripted([{ status: 503, headers: { 'retry-after': 'Thu, 01 Jan 2026 00:00:42 GMT' } }]);
    const r = await run(workflow([{ id: 'call', uses: 'http', retry: { attempts: 2, maxDelay: '1m' }, with: { url: server.url } }]), makeDeps({ clock }));
    expect(r.status).toBe('succeeded');
    expect(clock.sleeps).toEqual([42_000]);
  });

  it('never waits longer than retry.maxDelay, whatever Retry-After asks (a day, or digits beyond Infinity)', async () => {
    const server = await scripted([
      { status: 429, headers: { 'retry-after': '86400' } },
      { status: 503, headers: { 'retry-after': '9'.repeat(400) } },
    ]);
    const clock = fakeClock();
    const r = await run(workflow([{ id: 'call', uses: 'http', retry: { attempts: 3, maxDelay: '5s' }, with: { url: server.url } }]), makeDeps({ clock }));
    expect(r.status).toBe('succeeded');
    // a day is cut to maxDelay; 400 digits of seconds is unreadable, so plain backoff applies
    expect(clock.sleeps).toHaveLength(2);
    expect(clock.sleeps[0]).toBe(5000);
    expect(clock.sleeps[1]).toBeLessThanOrEqual(5000);
    // with the default policy the cap is its maxDelay, 30 s
    const again = await scripted([{ status: 429, headers: { 'retry-after': '86400' } }]);
    const clock2 = fakeClock();
    await run(workflow([{ id: 'call', uses: 'http', retry: { attempts: 2 }, with: { url: again.url } }]), makeDeps({ clock: clock2 }));
    expect(clock2.sleeps).toEqual([30_000]);
  });

  it('does not retry a 400', async () => {
    const server = await scripted([{ status: 400 }, { status: 400 }]);
    const clock = fakeClock();
    const r = await run(workflow([{ id: 'call', uses: 'http', retry: { attempts: 5 }, with: { url: server.url } }]), makeDeps({ clock }));
    expect(r.status).toBe('failed');
    expect(server.requests).toHaveLength(1);
    expect(r.steps.call).toMatchObject({ attempts: 1, error: { status: 400, retryable: false } });
    expect(clock.sleeps).toEqual([]);
  });

  it('gives up after the last attempt', async () => {
    const server = await scripted([{ status: 502 }, { status: 502 }, { status: 502 }, { status: 502 }]);
    const r = await run(workflow([{ id: 'call', uses: 'http', retry: { attempts: 3 }, with: { url: server.url } }]));
    expect(r.status).toBe('failed');
    expect(server.requests).toHaveLength(3);
    expect(r.steps.call.attempts).toBe(3);
  });

  it('retries network errors (connection refused)', async () => {
    const server = await startServer((_q, res) => json(res, 200, {}));
    const deadUrl = server.url;
    await server.close();
    const clock = fakeClock();
    const r = await run(workflow([{ id: 'call', uses: 'http', retry: { attempts: 3 }, with: { url: deadUrl } }]), makeDeps({ clock }));
    expect(r.status).toBe('failed');
    expect(r.steps.call.attempts).toBe(3);
    expect(r.steps.call.error).toMatchObject({ code: 'E_NETWORK', retryable: true });
    expect(clock.sleeps).toHaveLength(2);
  });
});
