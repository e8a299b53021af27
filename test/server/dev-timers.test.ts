/**
 * Schedules and polls inside `alloy dev` (startDevRuntime with the real engine, a real
 * SQLite event log, the shipped fake Shopify, a manual clock): a schedule fires on time and,
 * after a restart, runs its latest missed tick once; a polling trigger pages through
 * Shopify's orders, survives a restart without re-emitting or skipping an item, and starts
 * from "now" on its first run.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadProject } from '../../src/core/project.js';
import { builtinConnectorManifests } from '../../src/connectors/builtin-manifests.js';
import { startDevRuntime, type DevEvent, type DevRuntime } from '../../src/server/dev-runtime.js';
import { manualTimerClock } from '../../src/server/time-ports.js';
import { startFakeShopify, type FakeShopify } from '../fakes/fake-shopify.js';
import { writeTree } from '../runtime/helpers.js';
import { tempDir, waitFor } from './helpers.js';

const T0 = Date.parse('2026-03-02T08:00:00Z');

let fake: FakeShopify;
beforeAll(async () => {
  fake = await startFakeShopify();
});
afterAll(() => fake.close());

describe('schedules and polls in alloy dev', () => {
  let tmp: ReturnType<typeof tempDir>;
  let rt: DevRuntime | undefined;
  let events: DevEvent[];
  beforeEach(() => {
    tmp = tempDir();
    events = [];
    fake.reset();
    writeTree(tmp.dir, {
      'alloy.config.yaml': `apiVersion: alloy/v1\nkind: Project\nname: timers\napps:\n  shopify:\n    baseUrl: "${fake.url}"\n`,
      '.env': `SHOPIFY_SHOP=${fake.shop}\nSHOPIFY_ACCESS_TOKEN=${fake.accessToken}\n`,
      'integrations/demo/integration.yaml': 'apiVersion: alloy/v1\nkind: Integration\nname: demo\napp: shopify\n',
      'integrations/demo/workflows/sweep.yaml':
        'apiVersion: alloy/v1\nkind: Workflow\nname: sweep\ntrigger:\n  schedule: { every: 15m }\nsteps:\n  - id: at\n    uses: transform\n    with: { at: "{{ event.scheduledAt }}", missed: "{{ event.missed }}" }\n',
      'integrations/demo/workflows/changed.yaml':
        'apiVersion: alloy/v1\nkind: Workflow\nname: changed\ntrigger: { app: shopify, event: orders/updated, poll: { every: 1m } }\nsteps:\n  - id: pick\n    uses: transform\n    with: { id: "{{ event.id }}", updatedAt: "{{ event.updatedAt }}" }\n',
    });
  });
  afterEach(async () => {
    await rt?.close();
    rt = undefined;
    tmp.cleanup();
  });

  const start = (clock: ReturnType<typeof manualTimerClock>) =>
    startDevRuntime({
      root: tmp.dir,
      loadProject: () => loadProject(tmp.dir, { builtinConnectors: builtinConnectorManifests }),
      processEnv: {},
      port: 0,
      watch: false,
      timerClock: clock,
      onEvent: (e) => events.push(e),
    });

  const finished = (workflow: string) => rt!.server.log.listExecutions({ workflow, limit: 100000 }).filter((e) => e.status === 'succeeded');

  it('fires a schedule on time, shows the next fire time, and runs the latest missed tick once after a restart', async () => {
    let clock = manualTimerClock(T0 + 1000);
    rt = await start(clock);
    expect(rt.timers().find((t) => t.workflow === 'demo/sweep')).toEqual({ workflow: 'demo/sweep', label: 'every 15m', nextAt: '2026-03-02T08:15:00.000Z' });
    await clock.advance(15 * 60_000);
    await waitFor(() => finished('demo/sweep').length === 1, 'the 08:15 tick');
    expect(finished('demo/sweep')[0].record.steps).toMatchObject({ at: { output: { at: '2026-03-02T08:15:00.000Z', missed: false } } });
    await rt.close();

    // Down from 08:15 until 09:10: 08:30, 08:45 and 09:00 were missed; only 09:00 runs.
    clock = manualTimerClock(T0 + 70 * 60_000);
    rt = await start(clock);
    await waitFor(() => finished('demo/sweep').length === 2, 'the missed tick');
    const runs = finished('demo/sweep').map((e) => (e.record.steps as Record<string, { output: { at: string; missed: boolean } }>).at.output);
    expect(runs).toEqual(expect.arrayContaining([{ at: '2026-03-02T09:00:00.000Z', missed: true }]));
    expect(runs).toHaveLength(2);
  });

  it('polls orders page by page, survives a restart without re-emitting or skipping, and starts from now', async () => {
    // Orders from before the first poll are not emitted ("starts from now").
    for (let i = 0; i < 3; i++) fake.addOrder({ updatedAt: '2026-03-02T07:00:00.000Z' });
    const clock = manualTimerClock(T0);
    rt = await start(clock);
    await waitFor(() => events.some((e) => e.type === 'poll'), 'the first poll');
    expect(finished('demo/changed')).toHaveLength(0);

    // 600 orders changed after the first poll: three pages of 250 at the next poll.
    for (let i = 0; i < 600; i++) fake.addOrder({ updatedAt: new Date(T0 + 1000 + i * 10).toISOString() });
    fake.requests.length = 0;
    await rt.pollNow('demo/changed');
    await waitFor(() => finished('demo/changed').length === 600, '600 executions', 30_000);
    const pollCalls = fake.requests.filter((r) => r.operation === 'orders');
    expect(pollCalls).toHaveLength(3);
    expect((pollCalls[1].json as { variables: { after: string } }).variables.after).toBeTruthy();
    expect((pollCalls[0].json as { variables: { query: string } }).variables.query).toBe("updated_at:>='2026-03-02T08:00:00.000Z'");
    await rt.close();

    // While down: two orders change (one at the same instant as the last seen one).
    const last = fake.orders[fake.orders.length - 1];
    fake.updateOrder(fake.orders[10].id, { note: 'edited' }, '2026-03-02T08:30:00.000Z');
    fake.addOrder({ updatedAt: last.updatedAt });
    rt = await start(manualTimerClock(T0 + 60 * 60_000));
    await waitFor(() => finished('demo/changed').length === 602, 'the two changes', 10_000);
    // And nothing more on the next poll.
    await rt.pollNow('demo/changed');
    await new Promise((r) => setTimeout(r, 200));
    const all = finished('demo/changed').map((e) => (e.record.steps as Record<string, { output: { id: string; updatedAt: string } }>).pick.output);
    expect(all).toHaveLength(602);
    expect(new Set(all.map((o) => `${o.id}@${o.updatedAt}`)).size).toBe(602);
    expect(all.filter((o) => o.id === `gid://shopify/Order/${fake.orders[10].id}`)).toHaveLength(2);
  });
});
