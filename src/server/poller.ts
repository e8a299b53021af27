/**
 * Runs polled triggers (`trigger: { app, event, poll? }` where the connector's trigger has
 * `poll:`). Per target (a workflow in dev; an installation of it in serve): a run at start,
 * then one per interval slot (slots are aligned to the epoch, like `every:` schedules), never
 * two at once. A run pages through the items changed since the durable cursor
 * (connectors/poll.ts) and, page by page, claims one execution per new item under
 * `poll:<target id>:<id>@<updatedAt>` and then advances the cursor. A crash between the two
 * re-polls that page after restart; the claims already made are duplicates and run
 * nothing, so an item is neither emitted twice nor skipped.
 *
 * Many processes (serve) share one cursor store: a run first claims its slot
 * (`poll-slot:<target id>`, compare-and-set), so one process polls a target per interval;
 * and every cursor advance is a compare-and-set from the value the run read, so if two runs
 * ever overlap (a slow run past its slot) the one that falls behind stops instead of
 * moving the cursor back or past items it did not claim.
 */
import type { LoadedProject } from '../core/project-types.js';
import { createConnectorRegistry } from '../connectors/registry.js';
import { resolveConnection } from '../connectors/credentials.js';
import { compilePoll, type CompiledPoll, type PollCursor, type PolledItem, type PollRunResult } from '../connectors/poll.js';
import type { ConnectorRegistry, HttpClient } from '../connectors/types.js';
import type { AppSettings, ConnectorManifest } from '../core/model.js';
import { pacedHttp, type CostLimiter } from '../serve/limiter.js';
import { tryParseDuration } from '../engine/duration.js';
import type { Claim, CursorStore, TimerClock } from './time-ports.js';

export interface PollTarget {
  /** Cursor and dedupe keys are per id; default the workflow (dev). */
  id?: string;
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
  | { type: 'poll'; workflow: string; target: string; pages: number; emitted: number; duplicates: number; truncated: boolean; since: string; superseded?: boolean }
  | { type: 'error'; workflow: string; target?: string; message: string; executionId?: string };

export interface PollerOptions {
  clock: TimerClock;
  cursors: CursorStore;
  claim: Claim;
  source: PollSource;
  onEvent?(event: PollerEvent): void;
}

export interface Poller {
  setTargets(targets: PollTarget[]): Promise<void>;
  /** Runs a target's poll now, whatever its slot (tests, `pollNow`); resolves when it ended. */
  runNow(id: string): Promise<void>;
  next(): { target: string; workflow: string; label: string; nextAt?: string }[];
  close(): void;
}

const idOf = (t: PollTarget) => t.id ?? t.workflow;
const cursorKey = (t: PollTarget) => `poll:${idOf(t)}`;
const slotKey = (t: PollTarget) => `poll-slot:${idOf(t)}`;

/** Another run advanced the cursor since this one read it. */
class Superseded extends Error {}

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

  /** The stored cursor (and its text, for compare-and-set); a missing or damaged one starts from `since`/now. */
  const readCursor = async (t: PollTarget): Promise<{ cursor: PollCursor; raw: string }> => {
    for (let attempt = 0; attempt < 3; attempt++) {
      const stored = await cursors.get(cursorKey(t));
      if (stored) {
        try {
          const c = JSON.parse(stored) as PollCursor;
          if (typeof c.since === 'string' && Array.isArray(c.seen)) return { cursor: c, raw: stored };
        } catch {
          // A damaged cursor starts over from now, below.
        }
      }
      const since = t.since && t.since !== 'now' ? new Date(t.since).toISOString() : new Date(clock.now()).toISOString();
      const raw = JSON.stringify({ since, seen: [] });
      if (await cursors.compareAndSet(cursorKey(t), stored, raw)) return { cursor: { since, seen: [] }, raw };
      // Another process created it first: read theirs.
    }
    throw new Error('the poll cursor keeps changing under this process');
  };

  /** Claims the current interval slot for this target; false when a run (here or elsewhere) already had it. */
  const claimSlot = async (t: PollTarget): Promise<boolean> => {
    const slot = Math.floor(clock.now() / t.everyMs) * t.everyMs;
    const prev = await cursors.get(slotKey(t));
    if (prev !== undefined && Number(prev) >= slot) return false;
    return cursors.compareAndSet(slotKey(t), prev, String(slot));
  };

  const runOnce = async (a: Active, force: boolean) => {
    const t = a.target;
    let duplicates = 0;
    let pages = 0;
    try {
      if (!force && !(await claimSlot(t))) return;
      const start = await readCursor(t);
      let raw = start.raw;
      const advance = async (next: PollCursor) => {
        const text = JSON.stringify(next);
        if (text === raw) return;
        if (!(await cursors.compareAndSet(cursorKey(t), raw, text))) throw new Superseded();
        raw = text;
      };
      let emitted = 0;
      try {
        const result = await source(t, start.cursor, async (items, next) => {
          pages++;
          for (const item of items) {
            const r = await claim({ target: idOf(t), source: `poll:${t.app}`, name: t.topic, workflow: t.workflow, event: item.item, dedupeKey: `poll:${idOf(t)}:${item.key}` });
            if (r.duplicate) duplicates++;
            else emitted++;
          }
          await advance(next);
        });
        await advance(result.cursor);
        emit({ type: 'poll', workflow: t.workflow, target: idOf(t), pages: result.pages, emitted: result.emitted - duplicates, duplicates, truncated: result.truncated, since: result.cursor.since });
      } catch (err) {
        if (!(err instanceof Superseded)) throw err;
        // What this run claimed stands (claims are de-duplicated); the newer cursor wins.
        emit({ type: 'poll', workflow: t.workflow, target: idOf(t), pages, emitted, duplicates, truncated: false, since: start.cursor.since, superseded: true });
      }
    } catch (err) {
      emit({ type: 'error', workflow: t.workflow, target: idOf(t), message: `poll of ${t.app} ${t.topic} failed: ${(err as Error).message}` });
    }
  };

  const run = (a: Active, force = false): Promise<void> => {
    a.running ??= runOnce(a, force).finally(() => {
      a.running = undefined;
    });
    return a.running;
  };

  const arm = (a: Active) => {
    if (closed || active.get(idOf(a.target)) !== a) return;
    // The next slot boundary: every process wakes for the same slot and one claims it.
    const now = clock.now();
    const at = (Math.floor(now / a.target.everyMs) + 1) * a.target.everyMs;
    a.nextAt = at;
    a.cancel = clock.setTimer(at - now, () => {
      void run(a).then(() => arm(a));
    });
  };

  return {
    async setTargets(targets) {
      const wanted = new Set(targets.map(idOf));
      for (const [key, a] of active) {
        if (!wanted.has(key)) {
          a.cancel?.();
          active.delete(key);
        }
      }
      const first: Promise<void>[] = [];
      for (const t of targets) {
        const signature = JSON.stringify(t);
        const current = active.get(idOf(t));
        if (current && current.signature === signature) continue;
        current?.cancel?.();
        const a: Active = { target: t, signature };
        active.set(idOf(t), a);
        // The first run now: it sets the cursor ("from now") and picks up what changed while down.
        first.push(run(a).then(() => arm(a)));
      }
      await Promise.all(first);
    },
    async runNow(id) {
      const a = active.get(id);
      if (a) await run(a, true);
    },
    next() {
      return [...active.values()].map((a) => ({
        target: idOf(a.target),
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
  /** The connectors a target's app is looked up in (dev: the project's; serve: the built-in ones). */
  registry(): ConnectorRegistry;
  /** The app's settings (baseUrl, apiVersion). */
  settings(app: string): AppSettings;
  /** The connection a target polls with (dev: env/.env; serve: the installation's credential). */
  connection(target: PollTarget, manifest: ConnectorManifest): Promise<Record<string, string>>;
  http: HttpClient;
  /** Paces the polls per (app, account) on the app's cost reports (serve: the runner's limiter too). */
  costs?: CostLimiter;
  signal?: AbortSignal;
  maxPages?: number;
}

/** A PollSource over connector manifests: compiles each trigger's poll once and runs it with the target's connection. */
export function createConnectorPollSource(options: ConnectorPollSourceOptions): PollSource {
  const compiled = new Map<string, CompiledPoll | undefined>();
  return async (target, cursor, onItems) => {
    const runtime = options.registry().get(target.app);
    if (!runtime) throw new Error(`no connector "${target.app}"`);
    const key = `${target.app}:${target.topic}:${JSON.stringify(runtime.manifest.triggers?.[target.topic]?.poll ?? null)}`;
    if (!compiled.has(key)) compiled.set(key, compilePoll(runtime.manifest, target.topic));
    const poll = compiled.get(key);
    if (!poll) throw new Error(`${target.app} ${target.topic} is not a polled trigger`);
    const connection = await options.connection(target, runtime.manifest);
    const signal = options.signal ?? new AbortController().signal;
    // The same bucket key as the runner's calls: `<app>:<account>` (Shopify: the shop domain).
    const bucket = `${target.app}:${connection.shop ?? ''}`;
    const http = options.costs ? pacedHttp(options.http, options.costs, () => bucket) : options.http;
    return poll.run(
      cursor,
      {
        connection,
        settings: options.settings(target.app),
        http,
        signal,
        now: Date.now,
        logger: { debug() {}, warn() {} },
      },
      onItems,
      options.maxPages,
    );
  };
}

/** The dev poll source: the project's connectors and settings, connections from env/.env. */
export function projectPollSource(options: { project(): LoadedProject; env: Record<string, string | undefined>; http: HttpClient; costs?: CostLimiter; signal?: AbortSignal; maxPages?: number }): PollSource {
  return createConnectorPollSource({
    registry: () => createConnectorRegistry({ userConnectors: options.project().connectors.map((c) => c.def) }),
    settings: (app) => options.project().config.apps?.[app] ?? {},
    connection: (_target, manifest) => resolveConnection({ manifest, userId: undefined, env: options.env, projectRoot: options.project().root }),
    http: options.http,
    costs: options.costs,
    signal: options.signal,
    maxPages: options.maxPages,
  });
}
