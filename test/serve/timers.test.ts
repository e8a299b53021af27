/**
 * Schedules and polls in `alloy serve` (startServeServer over real SQLite files, the real
 * engine, the fake Shopify on 127.0.0.1, a manual clock: no sleeps):
 * - a schedule fires once per installation per tick, with three runtimes sharing one state
 *   (three connections to one SQLite file), and stops for a deactivated installation;
 * - ticks missed while down: the latest runs once after a restart;
 * - a polling trigger pages through the shop's orders with the installation's credential,
 *   survives a restart without re-emitting or skipping an item, and waits for the shop's
 *   cost bucket (the limiter the runner's calls use).
 */
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { IntegrationDef, WorkflowDef } from '../../src/core/model.js';
import { LocalStore, type IntegrationSource } from '../../src/store/lib.js';
import { makeKeyring } from '../../src/serve/crypto.js';
import { storeDefinitionSource } from '../../src/serve/definitions.js';
import { startServeServer, type ServeServer } from '../../src/serve/server.js';
import { openSqliteState } from '../../src/serve/state/sqlite-state.js';
import type { ServeState } from '../../src/serve/state/types.js';
import { createApiKey } from '../../src/serve/admin.js';
import { manualTimerClock } from '../../src/server/time-ports.js';
import type { SchedulerEvent } from '../../src/server/scheduler.js';
import type { PollerEvent } from '../../src/server/poller.js';
import { startFakeShopify, type FakeShopify } from '../../src/testing/fake-shopify.js';
import { MASTER, allExecutions, call, cleanup, releaseAndPublish, tempDir, waitFor } from './helpers.js';

const T0 = Date.parse('2026-03-02T08:00:00Z');
const MIN = 60_000;

function timersSource(): IntegrationSource {
  const def = { apiVersion: 'alloy/v1', kind: 'Integration', name: 'timers', app: 'shopify' } as unknown as IntegrationDef;
  const wf = (name: string, trigger: unknown, step: Record<string, unknown>) => ({ name, def: { apiVersion: 'alloy/v1', kind: 'Workflow', name, trigger, steps: [step] } as unknown as WorkflowDef });
  return {
    name: 'timers',
    def,
    workflows: [
      wf('sweep', { schedule: { every: '1m' } }, { id: 'at', uses: 'transform', with: { at: '{{ event.scheduledAt }}', missed: '{{ event.missed }}' } }),
      wf('changed', { app: 'shopify', event: 'orders/updated', poll: { every: '5m' } }, { id: 'pick', uses: 'transform', with: { id: '{{ event.id }}', updatedAt: '{{ event.updatedAt }}' } }),
    ],
  };
}

let fake: FakeShopify;
beforeAll(async () => {
  fake = await startFakeShopify();
});
afterAll(async () => {
  await fake.close();
  cleanup();
});

interface Runtime {
  server: ServeServer;
  state: ServeState;
  events: (SchedulerEvent | PollerEvent)[];
}

describe('schedules and polls in alloy serve', () => {
  let store: LocalStore;
  let dbFile: string;
  const open: Runtime[] = [];
  const keyring = makeKeyring([MASTER]);

  const start = async (clock: ReturnType<typeof manualTimerClock>): Promise<Runtime> => {
    const state = openSqliteState(dbFile);
    const events: Runtime['events'] = [];
    const server = await startServeServer({
      state,
      keyring,
      source: storeDefinitionSource(store),
      settings: { shopify: { baseUrl: fake.url } },
      egress: { allow: ['127.0.0.1'] },
      port: 0,
      timerClock: clock,
      onTimerEvent: (e) => events.push(e),
    });
    const rt = { server, state, events };
    open.push(rt);
    return rt;
  };
  const stop = async (rt: Runtime) => {
    open.splice(open.indexOf(rt), 1);
    await rt.server.close();
  };

  const setup = async () => {
    fake.reset();
    const dir = tempDir('alloy-serve-timers-');
    dbFile = path.join(dir, 'data', 'serve.db');
    store = new LocalStore(path.join(dir, 'store'));
    await store.init();
    await releaseAndPublish(store, timersSource());
  };

  /** A user with a Shopify credential and an installation of `timers`; the installation id. */
  const install = async (rt: Runtime, userId: string): Promise<string> => {
    const admin = (await createApiKey(rt.state, 'admin', undefined, Date.now())).key;
    expect((await call(rt.server.url, 'POST', '/v1/users', { token: admin, body: { id: userId } })).status).toBe(201);
    const cred = await call(rt.server.url, 'POST', `/v1/users/${userId}/credentials`, { token: admin, body: { app: 'shopify', kind: 'token', account: fake.shop, fields: { accessToken: fake.accessToken } } });
    const inst = await call(rt.server.url, 'POST', '/v1/installations', { token: admin, body: { userId, integration: 'timers', credentials: { shopify: cred.body.id } } });
    expect(inst.status).toBe(201);
    // The process that installed arms its timers at once (after answering).
    await waitFor(() => rt.server.timers.next().filter((t) => t.target.startsWith(`${inst.body.id}:`)).length === 2, 'the timers of the installation');
    return inst.body.id as string;
  };

  const executions = allExecutions;
  const ticks = (e: (SchedulerEvent | PollerEvent)[], at: string) => e.filter((x) => x.type === 'tick' && x.scheduledAt === at);

  afterEach(async () => {
    for (const rt of open.splice(0)) await rt.server.close();
  });

  it('a schedule fires once per installation per tick across three runtimes sharing one state', async () => {
    await setup();
    const clock = manualTimerClock(T0 + 1000);
    const a = await start(clock);
    const installs = [await install(a, 'u1'), await install(a, 'u2')];
    const b = await start(clock);
    const c = await start(clock);
    const all = [a, b, c];
    for (const rt of all) expect(rt.server.timers.next().filter((t) => t.workflow === 'timers/sweep').map((t) => t.target).sort()).toEqual(installs.map((i) => `${i}:timers/sweep`).sort());

    for (let m = 1; m <= 4; m++) {
      await clock.advance(MIN);
      const at = new Date(T0 + m * MIN).toISOString();
      // Every runtime saw the tick for both installations; one of the three stored each.
      await waitFor(() => all.every((rt) => ticks(rt.events, at).length === 2), `the ${at} tick in every runtime`);
      const seen = all.flatMap((rt) => ticks(rt.events, at)) as Extract<SchedulerEvent, { type: 'tick' }>[];
      expect(seen.filter((t) => !t.duplicate)).toHaveLength(2);
      expect(seen.filter((t) => t.duplicate)).toHaveLength(4);
    }
    const runs = await waitFor(async () => {
      const list = await executions(a.state, 'timers/sweep');
      return list.length === 8 && list.every((e) => e.status === 'succeeded') ? list : undefined;
    }, '8 finished executions');
    const perTick = new Map<string, number>();
    for (const e of runs) {
      const key = `${e.installationId} ${(e.record.event as { scheduledAt: string }).scheduledAt}`;
      perTick.set(key, (perTick.get(key) ?? 0) + 1);
    }
    expect(perTick.size).toBe(8);
    expect([...perTick.values()].every((n) => n === 1)).toBe(true);

    // Deactivated through one runtime: that one stops at once, the others at their next refresh
    // (and a tick claimed before then stores nothing: the claim checks the installation).
    const admin = (await createApiKey(a.state, 'admin', undefined, Date.now())).key;
    expect((await call(a.server.url, 'POST', `/v1/installations/${installs[0]}/deactivate`, { token: admin })).status).toBe(200);
    await waitFor(() => !a.server.timers.next().some((t) => t.target.startsWith(installs[0])), 'runtime a to drop the installation');
    await clock.advance(MIN);
    const at5 = new Date(T0 + 5 * MIN).toISOString();
    await waitFor(() => ticks(b.events, at5).length >= 1 && ticks(c.events, at5).length >= 1, 'the 08:05 tick');
    await waitFor(async () => (await executions(a.state, 'timers/sweep')).length === 9, 'one more execution');
    const fifth = (await executions(a.state, 'timers/sweep')).filter((e) => (e.record.event as { scheduledAt: string }).scheduledAt === at5);
    expect(fifth.map((e) => e.installationId)).toEqual([installs[1]]);
  }, 60_000);

  it('runs the latest tick missed while down once, marked missed', async () => {
    await setup();
    let clock = manualTimerClock(T0 + 1000);
    let rt = await start(clock);
    await install(rt, 'u1');
    await clock.advance(MIN);
    await waitFor(async () => (await executions(rt.state, 'timers/sweep')).length === 1, 'the 08:01 tick');
    await stop(rt);
    // Down from 08:01 to 08:10:05: eight ticks missed, the 08:10 one runs.
    clock = manualTimerClock(T0 + 10 * MIN + 5000);
    rt = await start(clock);
    const runs = await waitFor(async () => {
      const list = await executions(rt.state, 'timers/sweep');
      return list.length === 2 && list.every((e) => e.status === 'succeeded') ? list : undefined;
    }, 'the missed tick');
    expect(runs.map((e) => e.record.event)).toEqual([
      expect.objectContaining({ scheduledAt: '2026-03-02T08:01:00.000Z', missed: false }),
      expect.objectContaining({ scheduledAt: '2026-03-02T08:10:00.000Z', missed: true }),
    ]);
    await new Promise((r) => setTimeout(r, 100));
    expect(await executions(rt.state, 'timers/sweep')).toHaveLength(2);
  }, 30_000);

  it('polls the installation\'s shop page by page and survives a restart without re-emitting or skipping', async () => {
    await setup();
    // Orders changed before the first poll are not emitted: it starts from now.
    for (let i = 0; i < 3; i++) fake.addOrder({ updatedAt: '2026-03-02T07:00:00.000Z' });
    const clock = manualTimerClock(T0);
    let rt = await start(clock);
    const inst = await install(rt, 'u1');
    const target = `${inst}:timers/changed`;
    await waitFor(() => rt.events.some((e) => e.type === 'poll' && e.target === target), 'the first poll');
    expect(await executions(rt.state, 'timers/changed')).toHaveLength(0);

    for (let i = 0; i < 300; i++) fake.addOrder({ updatedAt: new Date(T0 + 1000 + i * 10).toISOString() });
    fake.requests.length = 0;
    await rt.server.timers.pollNow(target);
    const pollCalls = fake.requests.filter((r) => r.operation === 'orders');
    expect(pollCalls).toHaveLength(2);
    // With the installation's credential, against its shop.
    expect(pollCalls.every((r) => r.shop === fake.shop && r.headers['x-shopify-access-token'] === fake.accessToken)).toBe(true);
    await waitFor(async () => (await executions(rt.state, 'timers/changed')).filter((e) => e.status === 'succeeded').length === 300, '300 executions', 30_000);
    await stop(rt);

    // While down: one order edited, one added at the very instant of the last seen one.
    const last = fake.orders[fake.orders.length - 1];
    fake.updateOrder(fake.orders[10].id, { note: 'edited' }, '2026-03-02T08:30:00.000Z');
    fake.addOrder({ updatedAt: last.updatedAt });
    const later = manualTimerClock(T0 + 60 * MIN);
    rt = await start(later);
    await waitFor(() => rt.events.some((e) => e.type === 'poll' && e.target === target), 'the first poll after the restart', 10_000);
    expect(await executions(rt.state, 'timers/changed')).toHaveLength(302);
    await rt.server.timers.pollNow(target);
    // The next interval slot: one run, nothing new.
    await later.advance(5 * MIN);
    await waitFor(() => rt.events.filter((e) => e.type === 'poll' && e.target === target).length >= 3, 'the slot poll');
    const all = (await executions(rt.state, 'timers/changed')).map((e) => e.record.event as { id: string; updatedAt: string });
    expect(all).toHaveLength(302);
    expect(new Set(all.map((o) => `${o.id}@${o.updatedAt}`)).size).toBe(302);
    expect(all.filter((o) => o.id === `gid://shopify/Order/${fake.orders[10].id}`)).toHaveLength(2);
  }, 60_000);

  it('a poll waits for the shop\'s cost bucket after a throttled answer', async () => {
    await setup();
    const clock = manualTimerClock(T0);
    const rt = await start(clock);
    const inst = await install(rt, 'u1');
    const target = `${inst}:timers/changed`;
    await waitFor(() => rt.events.some((e) => e.type === 'poll' && e.target === target), 'the first poll');
    // Shopify reports an empty bucket refilling at 100/s and a query cost of 80: the next call waits ~0.8 s.
    fake.throttleNext(1, { currentlyAvailable: 0, requestedQueryCost: 80, restoreRate: 100 });
    await rt.server.timers.pollNow(target);
    expect(rt.events.some((e) => e.type === 'error' && e.target === target && /Throttled/i.test(e.message))).toBe(true);
    const t = Date.now();
    await rt.server.timers.pollNow(target);
    expect(Date.now() - t).toBeGreaterThanOrEqual(700);
    expect(fake.requests.filter((r) => r.operation === 'orders').length).toBeGreaterThanOrEqual(2);
  }, 30_000);
});
