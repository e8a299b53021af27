/**
 * Snapshots of step outputs and the stream payload, per test file in
 * `tests/__snapshots__/<file>.snap.json` (a JSON object keyed by test name). A missing
 * snapshot is written (except under CI); a different one fails the test, or is rewritten
 * with `--update`. Files are written once at the end of a run, atomically.
 */
import { readFileSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { HarnessResult } from './types.js';
import { ensureProjectDirAsync, writeFileSafe } from '../core/safe-fs.js';
import { AlloyError, EXIT_USAGE } from '../errors.js';

/**
 * A snapshot file larger than this is refused unread (snapshots are test outputs, not data
 * dumps), and one that would be larger is refused unwritten: a run must not write a file the
 * next run refuses to read.
 */
export const MAX_SNAPSHOT_FILE_BYTES = 64 * 1024 * 1024;

export type SnapshotOutcome =
  | { state: 'match' | 'written' | 'updated' }
  | { state: 'mismatch'; expected: unknown; actual: unknown }
  | { state: 'missing' };

/** What a snapshot holds: the final status, each step's output, and the streamed data. */
export function snapshotOf(result: HarnessResult): unknown {
  const steps: Record<string, unknown> = {};
  for (const [p, s] of Object.entries(result.record.steps)) steps[p] = s.status === 'failed' ? { error: s.error?.code } : (s.output ?? null);
  return {
    status: result.record.status,
    steps,
    // The stream's data without the event (the test's input, not something the workflow made).
    ...(result.stream ? { stream: withoutEvent((result.stream as { data?: unknown }).data) } : {}),
  };
}

function withoutEvent(data: unknown): unknown {
  if (!data || typeof data !== 'object') return data;
  const { event: _event, ...rest } = data as Record<string, unknown>;
  return rest;
}

export function snapshotPath(root: string, testFile: string): string {
  const abs = path.join(root, testFile);
  return path.join(path.dirname(abs), '__snapshots__', `${path.basename(abs)}.snap.json`);
}

export class SnapshotBook {
  private readonly books = new Map<string, { data: Record<string, unknown>; dirty: boolean }>();
  constructor(
    private readonly root: string,
    private readonly options: { update: boolean; ci: boolean; maxFileBytes?: number },
  ) {}

  private get maxFileBytes(): number {
    return this.options.maxFileBytes ?? MAX_SNAPSHOT_FILE_BYTES;
  }

  private book(testFile: string) {
    const file = snapshotPath(this.root, testFile);
    let b = this.books.get(file);
    if (!b) {
      let data: Record<string, unknown> = {};
      // The project's file is wrong (a merge conflict, a planted link), not alloy: said so, exit 2.
      const unreadable = (why: string, hint: string) =>
        new AlloyError('E_SNAPSHOT', `cannot read snapshot file ${path.relative(this.root, file)}: ${why}`, { hint, exitCode: EXIT_USAGE, details: { file: path.relative(this.root, file) } });
      let real: string | undefined;
      try {
        real = realpathSync(file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw unreadable((err as Error).message, 'check the file and its permissions');
      }
      if (real !== undefined) {
        // A symlink planted at the snapshot (or its folder) pointing out of the tests folder is
        // not read: its target would be shown in a diff or a parse error.
        if (!real.startsWith(path.join(realpathSync(path.dirname(path.dirname(file))), '__snapshots__') + path.sep)) {
          throw unreadable('it is a link out of __snapshots__/', 'replace the link with the snapshot file itself, or delete it and run alloy test to write it again');
        }
        // Not a regular file (a named pipe would block the run for ever) or far too large: refused unread.
        const info = statSync(real, { throwIfNoEntry: false });
        if (info && !info.isDirectory() && (!info.isFile() || info.size > this.maxFileBytes)) {
          throw unreadable(info.isFile() ? `it is ${info.size} bytes; the limit is ${this.maxFileBytes}` : 'it is not a regular file (a pipe, a device or a socket)', 'delete it and run alloy test -u to write it again');
        }
        let text: string;
        try {
          text = readFileSync(real, 'utf8');
        } catch (err) {
          // A folder or a file this user cannot read: no merge conflict to resolve.
          const code = (err as NodeJS.ErrnoException).code;
          throw unreadable(code === 'EISDIR' ? 'it is a folder' : (err as Error).message, code === 'EISDIR' ? 'remove the folder; alloy test writes the snapshot file there' : 'check the file and its permissions');
        }
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch (err) {
          throw unreadable((err as Error).message, 'resolve the merge conflict in it, or delete it and run alloy test -u to write it again');
        }
        // An array or null was taken as the book: `null` failed as an internal error, an array was rewritten as an object.
        if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw unreadable('it is not a JSON object of snapshots by test name', 'delete it and run alloy test -u to write it again');
        data = parsed as Record<string, unknown>;
      }
      b = { data, dirty: false };
      this.books.set(file, b);
    }
    return b;
  }

  check(testFile: string, name: string, actual: unknown): SnapshotOutcome {
    const b = this.book(testFile);
    const plain = JSON.parse(JSON.stringify(actual)) as unknown;
    if (!Object.prototype.hasOwnProperty.call(b.data, name)) {
      if (this.options.ci && !this.options.update) return { state: 'missing' };
      b.data[name] = plain;
      b.dirty = true;
      return { state: 'written' };
    }
    if (isDeepStrictEqual(b.data[name], plain)) return { state: 'match' };
    if (this.options.update) {
      b.data[name] = plain;
      b.dirty = true;
      return { state: 'updated' };
    }
    return { state: 'mismatch', expected: b.data[name], actual: plain };
  }

  /**
   * Writes changed snapshot files (temp file + rename: never a half-written file, never through
   * a symlink). Every file is sized before any is written: one too large writes none.
   */
  async save(): Promise<void> {
    const texts: [string, string][] = [];
    for (const [file, b] of this.books) {
      if (!b.dirty) continue;
      const sorted = Object.fromEntries(Object.keys(b.data).sort().map((k) => [k, b.data[k]]));
      let text: string | undefined;
      try {
        text = JSON.stringify(sorted, null, 2) + '\n';
      } catch (err) {
        // Past the longest string V8 makes (about 512 MiB): far over the limit too.
        if (!(err instanceof RangeError)) throw err;
      }
      const size = text === undefined ? undefined : Buffer.byteLength(text);
      if (text === undefined || size! > this.maxFileBytes) {
        const rel = path.relative(this.root, file);
        throw new AlloyError('E_SNAPSHOT', `cannot write snapshot file ${rel}: it would be ${size === undefined ? 'over 512 MiB' : `${size} bytes`}; the limit is ${this.maxFileBytes}`, {
          hint: 'keep snapshots small: check large step outputs with expect.steps instead of snapshot: true, or split the tests over more test files',
          exitCode: EXIT_USAGE,
          details: { file: rel },
        });
      }
      texts.push([file, text]);
    }
    for (const [file, text] of texts) {
      // A linked __snapshots__/ (a hostile clone) is refused, not written through; the test
      // file's own folder is where the test was read from, links and all (a monorepo's).
      await ensureProjectDirAsync(path.dirname(file), path.dirname(path.dirname(file)));
      await writeFileSafe(file, text, { mode: 0o666 });
      this.books.get(file)!.dirty = false;
    }
  }
}
