/**
 * Runs polled triggers (`trigger: { app, event, poll? }` where the connector's trigger has
 * `poll:`). Per target: the first run starts at "now" (or `poll.since`), then one run every
 * interval, never two at once. A run pages through the items changed since the durable
 * cursor (connectors/poll.ts) and, page by page, claims one execution per new item under
 * `poll:<workflow>:<id>@<updatedAt>` and then stores the cursor. A crash between the two
 * re-polls that page after restart; the claims already made are duplicates and run
 * nothing, so an item is neither emitted twice nor skipped.
 *
 * Runs on the same ports as the scheduler (time-ports.ts), so a multi-process runtime can
 * reuse it with a shared cursor store and claim.
 */
import type { LoadedProject } from '../core/project-types.js';
import { createConnectorRegistry } from '../connectors/registry.js';
import { resolveConnection } from '../connectors/credentials.js';
import { compilePoll, type CompiledPoll, type PollCursor, type PolledItem, type PollRunResult } from '../connectors/poll.js';
import type { HttpClient } from '../connectors/types.js';
import { tryParseDuration } from '../engine/duration.js';
import type { Claim, CursorStore, TimerClock } from './time-ports.js';

export interface PollTarget {
  /** `<integration>/<workflow>`. */
  workflow: string;
  app: string;
  topic: string;
  everyMs: number;
  /** `now` or an ISO time: where the first run starts. */
  since?: string;
}

/** Fetches one run for a target from `cursor`, calling `onItems` per page. */
export type PollSource = (target: PollTarget, cursor: PollCursor, onItems: (items: PolledItem[], cursor: PollCursor) => Promise<void>) => Promise<PollRunResult>;

export type PollerEvent =
  | { type: 'poll'; workflow: string; pages: number; emitted: number; duplicates: number; truncated: boolean; since: string }
  | { type: 'error'; workflow: string; message: string; executionId?: string };

export interface PollerOptions {
  clock: TimerClock;
  cursors: CursorStore;
  claim: Claim;
  source: PollSource;
  onEvent?(event: PollerEvent): void;
}

export interface Poller {
  setTargets(targets: PollTarget[]): Promise<void>;
  /** Runs a target's poll now (tests, and the first run); resolves when it ended. */
  runNow(workflow: string): Promise<void>;
  next(): { workflow: string; label: string; nextAt?: string }[];
  close(): void;
}

const cursorKey = (workflow: string) => `poll:${workflow}`;

export function createPoller(options: PollerOptions): Poller {
  const { clock, cursors, claim, source } = options;
  const emit = (e: PollerEvent) => options.onEvent?.(e);
  interface Active {
    target: PollTarget;
    signature: string;
    cancel?: () => void;
    nextAt?: number;
    running?: Promise<void>;
  }
  const active = new Map<string, Active>();
  let closed = false;

  const readCursor = async (t: PollTarget): Promise<PollCursor> => {
    const stored = await cursors.get(cursorKey(t.workflow));
    if (stored) {
      try {
        const c = JSON.parse(stored) as PollCursor;
        if (typeof c.since === 'string' && Array.isArray(c.seen)) return c;
      } catch {
        // A damaged cursor starts over from now, below.
      }
    }
    const since = t.since && t.since !== 'now' ? new Date(t.since).toISOString() : new Date(clock.now()).toISOString();
    const fresh = { since, seen: [] };
    await cursors.set(cursorKey(t.workflow), JSON.stringify(fresh));
    return fresh;
  };

  const runOnce = async (a: Active) => {
    const t = a.target;
    let duplicates = 0;
    try {
      const cursor = await readCursor(t);
      const result = await source(t, cursor, async (items, next) => {
        for (const item of items) {
          const r = await claim({ source: `poll:${t.app}`, name: t.topic, workflow: t.workflow, event: item.item, dedupeKey: `poll:${t.workflow}:${item.key}` });
          if (r.duplicate) duplicates++;
        }
        await cursors.set(cursorKey(t.workflow), JSON.stringify(next));
      });
      await cursors.set(cursorKey(t.workflow), JSON.stringify(result.cursor));
      emit({ type: 'poll', workflow: t.workflow, pages: result.pages, emitted: result.emitted - duplicates, duplicates, truncated: result.truncated, since: result.cursor.since });
    } catch (err) {
      emit({ type: 'error', workflow: t.workflow, message: `poll of ${t.app} ${t.topic} failed: ${(err as Error).message}` });
    }
  };

  const run = (a: Active): Promise<void> => {
    a.running ??= runOnce(a).finally(() => {
      a.running = undefined;
    });
    return a.running;
  };

  const arm = (a: Active) => {
    if (closed || active.get(a.target.workflow) !== a) return;
    a.nextAt = clock.now() + a.target.everyMs;
    a.cancel = clock.setTimer(a.target.everyMs, () => {
      void run(a).then(() => arm(a));
    });
  };

  return {
    async setTargets(targets) {
      const wanted = new Set(targets.map((t) => t.workflow));
      for (const [key, a] of active) {
        if (!wanted.has(key)) {
          a.cancel?.();
          active.delete(key);
        }
      }
      const first: Promise<void>[] = [];
      for (const t of targets) {
        const signature = JSON.stringify(t);
        const current = active.get(t.workflow);
        if (current && current.signature === signature) continue;
        current?.cancel?.();
        const a: Active = { target: t, signature };
        active.set(t.workflow, a);
        // The first run now: it sets the cursor ("from now") and picks up what changed while down.
        first.push(run(a).then(() => arm(a)));
      }
      await Promise.all(first);
    },
    async runNow(workflow) {
      const a = active.get(workflow);
      if (a) await run(a);
    },
    next() {
      return [...active.values()].map((a) => ({
        workflow: a.target.workflow,
        label: `poll ${a.target.app} ${a.target.topic} every ${Math.round(a.target.everyMs / 1000)}s`,
        ...(a.nextAt !== undefined ? { nextAt: new Date(a.nextAt).toISOString() } : {}),
      }));
    },
    close() {
      closed = true;
      for (const a of active.values()) a.cancel?.();
      active.clear();
    },
  };
}

/** Poll targets: workflows whose app trigger the connector polls. */
export function pollTargets(project: LoadedProject, registry = createConnectorRegistry({ userConnectors: project.connectors.map((c) => c.def) })): PollTarget[] {
  const out: PollTarget[] = [];
  for (const integration of project.integrations) {
    for (const w of integration.workflows) {
      const t = w.def.trigger as { app?: string; event?: string; poll?: { every?: string | number; since?: string } };
      if (typeof t.app !== 'string' || typeof t.event !== 'string') continue;
      const poll = registry.get(t.app)?.manifest.triggers?.[t.event]?.poll;
      if (!poll) continue;
      const everyMs = tryParseDuration(t.poll?.every ?? poll.every) ?? 60_000;
      out.push({ workflow: `${w.integration}/${w.name}`, app: t.app, topic: t.event, everyMs: Math.max(1000, everyMs), since: t.poll?.since });
    }
  }
  return out;
}

export interface ConnectorPollSourceOptions {
  project(): LoadedProject;
  env: Record<string, string | undefined>;
  http: HttpClient;
  signal?: AbortSignal;
  maxPages?: number;
}

/** A PollSource over the project's connectors, with connections from env/.env (as `alloy dev` resolves them). */
export function createConnectorPollSource(options: ConnectorPollSourceOptions): PollSource {
  const compiled = new Map<string, CompiledPoll | undefined>();
  return async (target, cursor, onItems) => {
    const project = options.project();
    const registry = createConnectorRegistry({ userConnectors: project.connectors.map((c) => c.def) });
    const runtime = registry.get(target.app);
    if (!runtime) throw new Error(`no connector "${target.app}"`);
    const key = `${target.app}:${target.topic}:${JSON.stringify(runtime.manifest.triggers?.[target.topic]?.poll ?? null)}`;
    if (!compiled.has(key)) compiled.set(key, compilePoll(runtime.manifest, target.topic));
    const poll = compiled.get(key);
    if (!poll) throw new Error(`${target.app} ${target.topic} is not a polled trigger`);
    const connection = await resolveConnection({ manifest: runtime.manifest, userId: undefined, env: options.env, projectRoot: project.root });
    const signal = options.signal ?? new AbortController().signal;
    return poll.run(
      cursor,
      {
        connection,
        settings: project.config.apps?.[target.app] ?? {},
        http: options.http,
        signal,
        now: Date.now,
        logger: { debug() {}, warn() {} },
      },
      onItems,
      options.maxPages,
    );
  };
}
