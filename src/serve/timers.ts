/**
 * Schedules and polls in `alloy serve`: the dev scheduler and poller (src/server/scheduler.ts,
 * poller.ts) run here on the serve ports, one target per active installation of a workflow
 * with a `schedule:` or polled app trigger (target id `<installation>:<integration>/<workflow>`).
 *
 * - A tick or a polled item becomes an execution through the state's atomic ingest under
 *   `schedule:<installation>:<workflow>:<tick ISO>` or `poll:<installation>:<workflow>:<id>@<updatedAt>`:
 *   every process arms the same timers, the first to ingest a key stores it, the others get
 *   `duplicate` and run nothing. So a tick runs once per installation however many serve
 *   processes run, and a restart neither repeats nor loses one.
 * - Cursors (last tick, poll position, poll slot) live in the state's cursor store; a poll
 *   advances its cursor by compare-and-set, so two processes never both advance one.
 * - Polls call the app with the installation's credential, through the process's cost
 *   limiter (the one the runner's calls go through).
 * - The targets follow the installations: re-read every `refreshMs` (other processes install
 *   and deactivate too) and at once when this process changes one (`refresh()`).
 */
import { parseSchedule } from '../core/schedule.js';
import type { AppSettings } from '../core/model.js';
import { createConnectorRegistry } from '../connectors/registry.js';
import type { HttpClient } from '../connectors/types.js';
import { createScheduler, scheduleTargets, type ScheduleTarget, type SchedulerEvent } from '../server/scheduler.js';
import { createConnectorPollSource, createPoller, pollTargets, type PollTarget, type PollerEvent } from '../server/poller.js';
import type { Claim, TimerClock } from '../server/time-ports.js';
import type { Connections } from './connections.js';
import type { DefinitionSource } from './definitions.js';
import { executionRowFor, ingestExecutions } from './ingest.js';
import type { CostLimiter } from './limiter.js';
import type { ServeMetrics } from './metrics.js';
import type { Runner } from './runner.js';
import type { InstallationRecord, ServeState } from './state/types.js';

export interface ServeTimersOptions {
  state: ServeState;
  source: DefinitionSource;
  connections: Connections;
  settings: Record<string, AppSettings>;
  http: HttpClient;
  costs: CostLimiter;
  runner: Runner;
  metrics?: ServeMetrics;
  clock: TimerClock;
  /** How often the installations are re-read. Default 15 s. */
  refreshMs?: number;
  /** Pages one poll run reads at most. */
  maxPages?: number;
  onEvent?(event: SchedulerEvent | PollerEvent): void;
}

export interface ServeTimers {
  /** Reads the installations and arms their schedules and polls. */
  start(): Promise<void>;
  /** Re-reads the installations now (after this process installed, upgraded or deactivated one). */
  refresh(): Promise<void>;
  /** Every armed target with its next fire time. */
  next(): { target: string; workflow: string; label: string; nextAt?: string }[];
  /** Runs a poll target now, whatever its slot (tests). */
  pollNow(target: string): Promise<void>;
  close(): void;
}

interface Owner {
  installationId: string;
  workflow: string;
}

export const DEFAULT_REFRESH_MS = 15_000;

export function createServeTimers(options: ServeTimersOptions): ServeTimers {
  const { state, clock } = options;
  const registry = createConnectorRegistry({ userConnectors: [] });
  // Target id -> whose it is; claims and poll connections look the installation up by it.
  const owners = new Map<string, Owner>();
  const emit = (e: SchedulerEvent | PollerEvent) => options.onEvent?.(e);

  const claim: Claim = async (input) => {
    const owner = owners.get(input.target);
    const installation = owner && (await state.installations.get(owner.installationId));
    // Deactivated or deleted since the last refresh: nothing to run (and nothing stored).
    if (!installation || installation.status !== 'active') return { duplicate: true };
    const version = await options.source.get(installation.integration, installation.version);
    if (!version.defs.workflows.has(input.workflow)) return { duplicate: true };
    const row = executionRowFor(installation, input.workflow, input.event, clock.now());
    const r = await ingestExecutions(options, input.source, input.dedupeKey, [row]);
    options.metrics?.timerClaim(input.source === 'schedule' ? 'schedule' : 'poll', r.duplicate ? 'duplicate' : 'stored');
    return { duplicate: r.duplicate };
  };

  const scheduler = createScheduler({ clock, cursors: state.cursors, claim, onEvent: emit });
  const pollAbort = new AbortController();
  const poller = createPoller({
    clock,
    cursors: state.cursors,
    claim,
    onEvent: emit,
    source: createConnectorPollSource({
      registry: () => registry,
      settings: (app) => options.settings[app] ?? {},
      async connection(target, manifest) {
        const owner = owners.get(target.id ?? '');
        const installation = owner && (await state.installations.get(owner.installationId));
        if (!installation) throw new Error(`installation of ${target.workflow} is gone`);
        return options.connections.resolve(manifest, installation.credentials[target.app], installation.userId);
      },
      http: options.http,
      costs: options.costs,
      signal: pollAbort.signal,
      maxPages: options.maxPages,
    }),
  });

  async function activeInstallations(): Promise<InstallationRecord[]> {
    const out: InstallationRecord[] = [];
    let after: string | undefined;
    do {
      const p = await state.installations.list({ status: 'active' }, { limit: 200, after });
      out.push(...p.items);
      after = p.next;
    } while (after);
    return out;
  }

  let refreshing: Promise<void> | undefined;
  let again = false;
  const refreshNow = async () => {
    const schedules: ScheduleTarget[] = [];
    const polls: PollTarget[] = [];
    const nextOwners = new Map<string, Owner>();
    for (const i of await activeInstallations()) {
      let version;
      try {
        version = await options.source.get(i.integration, i.version);
      } catch (err) {
        emit({ type: 'error', workflow: `${i.integration}@${i.version}`, message: `installation ${i.id}: cannot load its version: ${(err as Error).message}` });
        continue;
      }
      const workflows = [...version.defs.workflows.values()].map((r) => ({ key: r.key, trigger: r.workflow.def.trigger }));
      for (const t of scheduleTargets(workflows, parseSchedule)) {
        const id = `${i.id}:${t.workflow}`;
        schedules.push({ ...t, id });
        nextOwners.set(id, { installationId: i.id, workflow: t.workflow });
      }
      for (const t of pollTargets(version.defs.project, registry)) {
        const id = `${i.id}:${t.workflow}`;
        polls.push({ ...t, id });
        nextOwners.set(id, { installationId: i.id, workflow: t.workflow });
      }
    }
    // New owners first (a first tick may claim at once), gone ones after the timers stop.
    for (const [id, o] of nextOwners) owners.set(id, o);
    await scheduler.setTargets(schedules);
    // Polls run their first request in the background: a slow app must not hold up start.
    void poller.setTargets(polls);
    for (const id of [...owners.keys()]) if (!nextOwners.has(id)) owners.delete(id);
  };
  // One refresh at a time; a request during one runs once more after it.
  const refresh = (): Promise<void> => {
    if (refreshing) {
      again = true;
      return refreshing;
    }
    refreshing = (async () => {
      try {
        do {
          again = false;
          await refreshNow();
        } while (again && !closed);
      } finally {
        refreshing = undefined;
      }
    })();
    return refreshing;
  };

  let closed = false;
  let cancelTimer: (() => void) | undefined;
  const every = options.refreshMs ?? DEFAULT_REFRESH_MS;
  const arm = () => {
    if (closed) return;
    cancelTimer = clock.setTimer(every, () => {
      refresh()
        .catch((err) => emit({ type: 'error', workflow: '*', message: `installations could not be read: ${(err as Error).message}` }))
        .finally(arm);
    });
  };

  return {
    async start() {
      // Armed first: when the first read fails, the next refresh retries it.
      arm();
      await refresh();
    },
    refresh,
    next() {
      return [...scheduler.next(), ...poller.next()];
    },
    pollNow: (target) => poller.runNow(target),
    close() {
      closed = true;
      cancelTimer?.();
      scheduler.close();
      poller.close();
      pollAbort.abort(new Error('stopping'));
    },
  };
}
