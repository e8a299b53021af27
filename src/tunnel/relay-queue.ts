/**
 * The relay's offline queue: requests for a developer who is not connected wait on disk
 * and are delivered in order when they reconnect.
 *
 * One JSON file per request under `<dir>/<name>/<seq>-<receivedAtMs>.json`, written to a
 * temp file, fsynced, renamed into place and the directory fsynced, before the app is
 * answered 202, so an acknowledged request survives a relay crash or restart. A file is
 * deleted only after the developer's dev server answered it (the ack).
 *
 * Bounded per name in count, bytes and age. Nothing leaves silently: a request over the
 * bound is refused (the caller answers 507, so the app keeps and retries it), one that
 * expires is deleted and counted, one whose file cannot be read or parsed is moved aside to
 * `<file>.bad` (kept for inspection, never deleted) and counted; the counts are kept in
 * `dropped.json` and reported to the developer on reconnect until they acknowledge them.
 */
import { access, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ensurePrivateDirAsync, writeFileSafe } from '../core/safe-fs.js';
import type { DropReport, HeaderPairs } from './protocol.js';

export interface QueueLimits {
  /** Most requests waiting per name. */
  maxItems: number;
  /** Most bytes (of stored files) waiting per name. */
  maxBytes: number;
  /** Oldest a request may get before it is dropped (and counted) instead of delivered. */
  maxAgeMs: number;
}

export const DEFAULT_QUEUE_LIMITS: QueueLimits = {
  maxItems: 1000,
  maxBytes: 64 * 1024 * 1024,
  // Shopify retries a failed delivery for about 48 hours; keep queued ones as long.
  maxAgeMs: 48 * 60 * 60 * 1000,
};

export interface QueuedRequest {
  id: string;
  name: string;
  seq: number;
  receivedAt: string;
  method: string;
  path: string;
  headers: HeaderPairs;
  /** base64 of the exact bytes received. */
  body: string;
}

interface Entry {
  file: string;
  seq: number;
  bytes: number;
  receivedAtMs: number;
}

interface NameState {
  entries: Entry[];
  bytes: number;
  nextSeq: number;
  dropped: Required<DropReport>;
  /** Space promised to writes still in progress (so concurrent enqueues see the bound). */
  reservedItems: number;
  reservedBytes: number;
  /** Serialises disk writes for a name so files land in sequence order. */
  chain: Promise<unknown>;
  /** Entries whose delivered file is being deleted (seq -> the deletion). */
  removing: Map<number, Promise<void>>;
  /** Entries taken off the front while they are being moved aside: still waiting until that succeeds. */
  settingAside: number;
}

export type EnqueueResult = { ok: true; item: QueuedRequest } | { ok: false; reason: 'items' | 'bytes' };

const FILE_PATTERN = /^(\d{16})-(\d+)\.json$/;
/** An entry moved aside by peek: its sequence number stays taken. */
const BAD_PATTERN = /^(\d{16})-\d+\.json\.bad$/;

export interface RelayQueueOptions {
  now?: () => number;
  onExpired?: (name: string, count: number) => void;
  /** An entry could not be read or parsed; it was moved to `badFile` (inside the name's directory). */
  onUnreadable?: (name: string, badFile: string, reason: string) => void;
}

const noDrops = (): Required<DropReport> => ({ overflow: 0, expired: 0, unreadable: 0 });

export class RelayQueue {
  private readonly states = new Map<string, NameState>();
  /** One load per name even when its first requests arrive together. */
  private readonly loading = new Map<string, Promise<NameState>>();

  private readonly now: () => number;
  private readonly onExpired: (name: string, count: number) => void;
  private readonly onUnreadable: (name: string, badFile: string, reason: string) => void;

  private constructor(
    private readonly dir: string,
    readonly limits: QueueLimits,
    options: RelayQueueOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.onExpired = options.onExpired ?? (() => {});
    this.onUnreadable = options.onUnreadable ?? (() => {});
  }

  /** Open (creating) the queue directory and index what a previous run left. */
  static async open(dir: string, limits: QueueLimits, options: RelayQueueOptions = {}): Promise<RelayQueue> {
    await ensurePrivateDirAsync(dir);
    const queue = new RelayQueue(dir, limits, options);
    for (const dirent of await readdir(dir, { withFileTypes: true })) {
      if (dirent.isDirectory()) await queue.load(dirent.name);
    }
    return queue;
  }

  private async load(name: string): Promise<NameState> {
    const state: NameState = { entries: [], bytes: 0, nextSeq: 1, dropped: noDrops(), reservedItems: 0, reservedBytes: 0, chain: Promise.resolve(), removing: new Map(), settingAside: 0 };
    const nameDir = join(this.dir, name);
    // 0700, and never a symlink: queued requests are written here.
    await ensurePrivateDirAsync(nameDir);
    let lastBadSeq = 0;
    for (const file of await readdir(nameDir)) {
      const m = FILE_PATTERN.exec(file);
      const bad = BAD_PATTERN.exec(file);
      if (bad) {
        lastBadSeq = Math.max(lastBadSeq, Number(bad[1]));
      } else if (m) {
        const { size } = await stat(join(nameDir, file));
        state.entries.push({ file, seq: Number(m[1]), bytes: size, receivedAtMs: Number(m[2]) });
        state.bytes += size;
      } else if (file.endsWith('.tmp') || file.startsWith('.tmp-')) {
        // A write that crashed before its rename was never acknowledged to the app: discard.
        await rm(join(nameDir, file), { force: true });
      }
    }
    state.entries.sort((a, b) => a.seq - b.seq);
    state.nextSeq = Math.max(state.entries.at(-1)?.seq ?? 0, lastBadSeq) + 1;
    try {
      const saved = JSON.parse(await readFile(join(nameDir, 'dropped.json'), 'utf8')) as Partial<DropReport>;
      state.dropped = { overflow: Number(saved.overflow) || 0, expired: Number(saved.expired) || 0, unreadable: Number(saved.unreadable) || 0 };
    } catch {
      // no drops recorded
    }
    this.states.set(name, state);
    return state;
  }

  private async state(name: string): Promise<NameState> {
    const loaded = this.states.get(name);
    if (loaded) return loaded;
    let pending = this.loading.get(name);
    if (!pending) {
      pending = this.load(name).finally(() => this.loading.delete(name));
      this.loading.set(name, pending);
    }
    return pending;
  }

  /** Requests waiting for `name` (0 for a name never seen). */
  pending(name: string): number {
    const state = this.states.get(name);
    return state ? state.entries.length + state.reservedItems + state.settingAside : 0;
  }

  dropped(name: string): Required<DropReport> {
    const d = this.states.get(name)?.dropped;
    return { overflow: d?.overflow ?? 0, expired: d?.expired ?? 0, unreadable: d?.unreadable ?? 0 };
  }

  /** Persist a request durably (resolves after fsync + rename) or refuse it when over a bound. */
  async enqueue(name: string, req: Omit<QueuedRequest, 'seq' | 'name'>): Promise<EnqueueResult> {
    const state = await this.state(name);
    await this.expire(name, state);
    const item: QueuedRequest = { ...req, name, seq: state.nextSeq };
    const text = JSON.stringify(item);
    const bytes = Buffer.byteLength(text);
    if (state.entries.length + state.reservedItems + 1 > this.limits.maxItems) return this.overflow(name, state, 'items');
    if (state.bytes + state.reservedBytes + bytes > this.limits.maxBytes) return this.overflow(name, state, 'bytes');
    state.nextSeq += 1;
    const receivedAtMs = Date.parse(req.receivedAt) || this.now();
    const entry: Entry = { file: `${String(item.seq).padStart(16, '0')}-${receivedAtMs}.json`, seq: item.seq, bytes, receivedAtMs };
    state.reservedItems += 1;
    state.reservedBytes += bytes;
    // Writes are chained per name, so entries become visible (to peek) in sequence order
    // and only once their file is whole on disk.
    const write = state.chain.then(async () => {
      try {
        await writeDurably(join(this.dir, name), entry.file, text);
        state.entries.push(entry);
        state.bytes += bytes;
      } finally {
        state.reservedItems -= 1;
        state.reservedBytes -= bytes;
      }
    });
    state.chain = write.catch(() => undefined);
    await write;
    return { ok: true, item };
  }

  /**
   * The oldest deliverable request for `name`; expired ones are deleted and counted first,
   * unreadable ones moved aside and counted (so one bad file cannot hold up those behind it).
   * Throws only when an unreadable entry cannot be moved aside either; it then stays first.
   */
  async peek(name: string): Promise<QueuedRequest | undefined> {
    const state = await this.state(name);
    await state.chain; // writes in progress land first
    await this.expire(name, state);
    for (let entry = state.entries[0]; entry; entry = state.entries[0]) {
      let reason: string;
      let vanished = false;
      try {
        const parsed = parseQueuedRequest(await readFile(join(this.dir, name, entry.file), 'utf8'));
        if (parsed) return { ...parsed, name, seq: entry.seq }; // the file name's seq is the one remove() knows
        reason = 'not a queued request';
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        vanished = code === 'ENOENT';
        reason = code ?? (err as Error).message;
        const removal = vanished ? state.removing.get(entry.seq) : undefined;
        if (removal) {
          // Delivered and being deleted right now: not a drop. Look again once it is gone.
          await removal.catch(() => undefined);
          continue;
        }
      }
      await this.setAside(name, state, entry, reason, vanished);
    }
    return undefined;
  }

  private async setAside(name: string, state: NameState, entry: Entry, reason: string, vanished: boolean): Promise<void> {
    // Another peek (an old connection's drain) may have dealt with it meanwhile.
    if (state.entries[0] !== entry) return;
    state.entries.shift();
    state.bytes -= entry.bytes;
    const nameDir = join(this.dir, name);
    const badFile = `${entry.file}.bad`;
    if (!vanished) {
      state.settingAside += 1;
      try {
        // Never overwrite: an earlier .bad file is someone's evidence too.
        if (await exists(join(nameDir, badFile))) throw new Error(`${badFile} already exists`);
        await rename(join(nameDir, entry.file), join(nameDir, badFile));
      } catch (err) {
        // Could not move it: it stays first in line (the caller backs off and tries again).
        state.entries.unshift(entry);
        state.bytes += entry.bytes;
        throw err;
      } finally {
        state.settingAside -= 1;
      }
    }
    state.dropped.unreadable += 1;
    this.onUnreadable(name, vanished ? entry.file : badFile, vanished ? `${reason}: the file vanished` : reason);
    await this.saveDropped(name, state);
  }

  /** Delete a delivered request (after the developer's dev server answered it). */
  async remove(name: string, seq: number): Promise<void> {
    const state = await this.state(name);
    const entry = state.entries.find((e) => e.seq === seq);
    if (!entry) return;
    // Announced while the file goes: a concurrent peek (an old connection's drain during a
    // reconnect storm) that finds the file gone waits for this instead of counting a phantom
    // "unreadable" drop.
    const done = (async () => {
      await rm(join(this.dir, name, entry.file), { force: true });
      state.entries = state.entries.filter((e) => e !== entry);
      state.bytes -= entry.bytes;
    })();
    state.removing.set(entry.seq, done);
    try {
      await done;
    } finally {
      state.removing.delete(entry.seq);
    }
  }

  /** The developer has seen this drop report: subtract it (new drops since then remain). */
  async acknowledgeDropped(name: string, seen: DropReport): Promise<void> {
    const state = await this.state(name);
    if (!(Number(seen.overflow) > 0) && !(Number(seen.expired) > 0) && !(Number(seen.unreadable) > 0)) return;
    state.dropped = {
      overflow: Math.max(0, state.dropped.overflow - (Number(seen.overflow) || 0)),
      expired: Math.max(0, state.dropped.expired - (Number(seen.expired) || 0)),
      unreadable: Math.max(0, state.dropped.unreadable - (Number(seen.unreadable) || 0)),
    };
    await this.saveDropped(name, state);
  }

  private async overflow(name: string, state: NameState, reason: 'items' | 'bytes'): Promise<EnqueueResult> {
    state.dropped.overflow += 1;
    await this.saveDropped(name, state);
    return { ok: false, reason };
  }

  private async expire(name: string, state: NameState): Promise<void> {
    const cutoff = this.now() - this.limits.maxAgeMs;
    let expired = 0;
    while (state.entries[0] && state.entries[0].receivedAtMs < cutoff) {
      const entry = state.entries.shift()!;
      state.bytes -= entry.bytes;
      expired += 1;
      await rm(join(this.dir, name, entry.file), { force: true });
    }
    if (expired > 0) {
      state.dropped.expired += expired;
      this.onExpired(name, expired);
      await this.saveDropped(name, state);
    }
  }

  private async saveDropped(name: string, state: NameState): Promise<void> {
    const text = JSON.stringify(state.dropped);
    const write = state.chain.then(() => writeDurably(join(this.dir, name), 'dropped.json', text));
    state.chain = write.catch(() => undefined);
    await write;
  }
}

/** The stored request, or undefined when the text is JSON but not one (throws on bad JSON). */
function parseQueuedRequest(text: string): Omit<QueuedRequest, 'name' | 'seq'> | undefined {
  const v = JSON.parse(text) as Partial<QueuedRequest> | null;
  if (!v || typeof v !== 'object') return undefined;
  const strings = [v.id, v.receivedAt, v.method, v.path, v.body];
  if (!strings.every((x) => typeof x === 'string')) return undefined;
  const headers = v.headers;
  if (!Array.isArray(headers) || !headers.every((h) => Array.isArray(h) && h.length === 2 && typeof h[0] === 'string' && typeof h[1] === 'string')) {
    return undefined;
  }
  return { id: v.id!, receivedAt: v.receivedAt!, method: v.method!, path: v.path!, headers, body: v.body! };
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/** temp file + fsync + rename + directory fsync: the file is either whole or absent. */
async function writeDurably(dir: string, file: string, text: string): Promise<void> {
  // The shared safe write (core/safe-fs.ts): no symlinks, 0600, temp file + fsync + rename.
  await writeFileSafe(join(dir, file), text);
  const dh = await open(dir, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}
