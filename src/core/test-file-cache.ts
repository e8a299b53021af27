/**
 * A cache of parsed test files under `.alloy/cache/` (local state, never committed): parsing
 * a large suite's YAML cost more than running it. An entry is a file's path, the sha256 of
 * its exact text and the value js-yaml gave for that text, so an entry is used only for the
 * very text it was made from: any edit, however small, misses and parses again. Only files
 * the fast path parsed cleanly are kept (no diagnostics, no anchors), and only values JSON
 * carries exactly (no NaN, ±Infinity or -0). The header names the format, alloy's version
 * and js-yaml's, so an upgrade starts afresh. Schema checks still run on every load.
 *
 * File: `.alloy/cache/test-files.ndjson`, a header line then one JSON line per entry, so a
 * load parses only the entries it uses. Nothing is read or written through a symbolic link
 * (core/safe-fs.ts); a cache that cannot be read or written is simply not used.
 */
import { createHash } from 'node:crypto';
import { closeSync, constants as fsConstants, fstatSync, lstatSync, openSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { PACKAGE_ROOT } from '../package-paths.js';
import { ensurePrivateDir, writeFileSafeSync } from './safe-fs.js';

// /2: explicit core tags resolve as YAML 1.2 core on both paths (js-yaml took !!int 1_000, 0b11).
// /3: so do untagged scalars (js-yaml's fast path read 0b11, -0x1F and -0o17 as numbers, -.5 as a string).
const FORMAT = 'alloy-test-files/3';
/** A cache larger than this is ignored (and rewritten): test files are at most 8 MiB each. */
const MAX_CACHE_BYTES = 256 * 1024 * 1024;
const O_NOFOLLOW = fsConstants.O_NOFOLLOW ?? 0;

let header: string | undefined;
function headerLine(): string {
  if (header === undefined) {
    const require = createRequire(import.meta.url);
    const versionOf = (pkg: string) => {
      try {
        return (require(pkg) as { version: string }).version;
      } catch {
        return 'unknown';
      }
    };
    header = JSON.stringify({ format: FORMAT, alloy: versionOf(path.join(PACKAGE_ROOT, 'package.json')), parser: `js-yaml@${versionOf('js-yaml/package.json')}` });
  }
  return header;
}

export function testFileCacheDir(root: string): string {
  return path.join(root, '.alloy', 'cache');
}

export function testFileCachePath(root: string): string {
  return path.join(testFileCacheDir(root), 'test-files.ndjson');
}

/** Of a text (as UTF-8) or of bytes. */
export function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

interface Entry {
  file: string;
  hash: string;
  /** The entry's JSON line (parsed only when used). */
  line?: string;
  value?: unknown;
}

export class TestFileCache {
  /** What the file held, by path; what this load used or parsed, by path. */
  private readonly stored = new Map<string, Entry>();
  private readonly used = new Map<string, Entry>();
  private dirty = false;

  private constructor(private readonly root: string) {}

  /** Reads the project's cache (an empty cache when there is none or it is unusable). */
  static open(root: string): TestFileCache {
    const cache = new TestFileCache(root);
    const text = readNoFollow(testFileCachePath(root), testFileCacheDir(root), root);
    if (text === undefined) return cache;
    const lines = text.split('\n');
    if (lines[0] !== headerLine()) {
      cache.dirty = true;
      return cache;
    }
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i];
      // `{"file":<json string>,"sha256":"<64 hex>","value":…}`: the two keys are read without
      // parsing the value, which waits until the entry is used.
      const m = /^\{"file":("(?:[^"\\]|\\.)*"),"sha256":"([0-9a-f]{64})","value":/.exec(line);
      if (!m) {
        if (line !== '') cache.dirty = true;
        continue;
      }
      let file: string;
      try {
        file = JSON.parse(m[1]) as string;
      } catch {
        cache.dirty = true;
        continue;
      }
      cache.stored.set(file, { file, hash: m[2], line });
    }
    return cache;
  }

  /** The cached value for this exact text of `file`, or undefined. */
  get(file: string, hash: string): unknown {
    const e = this.stored.get(file);
    if (!e || e.hash !== hash || e.line === undefined) return undefined;
    let value: unknown;
    try {
      value = (JSON.parse(e.line) as { value: unknown }).value;
    } catch {
      this.dirty = true;
      return undefined;
    }
    if (value === undefined || value === null) return undefined;
    this.used.set(file, e);
    return value;
  }

  /** Remembers what `file`'s text (of sha256 `hash`) parsed to, when JSON carries it exactly. */
  put(file: string, hash: string, value: unknown): void {
    this.dirty = true;
    if (!jsonExact(value)) return;
    this.used.set(file, { file, hash, value });
  }

  /**
   * Writes the cache when it changed: the entries this load used or made (entries of files
   * that are gone or changed drop out). Errors are swallowed: a cache is never worth failing
   * a command for (read-only checkout, a symlinked `.alloy/`, a full disk).
   */
  save(): void {
    if (!this.dirty && this.used.size === this.stored.size) return;
    try {
      const dir = testFileCacheDir(this.root);
      ensurePrivateDir(dir, this.root); // level by level, a symlinked `.alloy` refused (and caught below)
      // `.alloy/` may be new in a repository that does not ignore it: ignore the cache itself.
      const ignore = path.join(dir, '.gitignore');
      if (!exists(ignore)) writeFileSafeSync(ignore, '*\n', { mode: 0o644 });
      const lines = [headerLine()];
      for (const e of this.used.values()) {
        lines.push(e.line ?? `{"file":${JSON.stringify(e.file)},"sha256":"${e.hash}","value":${JSON.stringify(e.value)}}`);
      }
      writeFileSafeSync(testFileCachePath(this.root), lines.join('\n') + '\n');
      this.dirty = false;
    } catch {
      /* not cached this time */
    }
  }
}

function exists(file: string): boolean {
  try {
    lstatSync(file);
    return true;
  } catch {
    return false;
  }
}

/**
 * The file's text, or undefined when it is missing, too large, or it or a folder up to `base`
 * is a symlink. Synchronous: one small read, where the thread pool's round trips (open, stat,
 * read, close) cost more than the read itself.
 */
function readNoFollow(file: string, dir: string, base: string): string | undefined {
  try {
    for (let d = dir; d !== base && path.dirname(d) !== d; d = path.dirname(d)) {
      if (!lstatSync(d).isDirectory()) return undefined;
    }
    const fd = openSync(file, fsConstants.O_RDONLY | O_NOFOLLOW);
    try {
      const info = fstatSync(fd);
      if (!info.isFile() || info.size > MAX_CACHE_BYTES) return undefined;
      return readFileSync(fd).toString('utf8');
    } finally {
      closeSync(fd);
    }
  } catch {
    return undefined;
  }
}

/** True when JSON.parse(JSON.stringify(v)) gives `v` back exactly (YAML's .nan, .inf and -0 do not survive). */
function jsonExact(v: unknown): boolean {
  if (typeof v === 'number') return Number.isFinite(v) && !Object.is(v, -0);
  if (v === null || typeof v !== 'object') return typeof v === 'string' || typeof v === 'boolean' || v === null;
  if (Array.isArray(v)) {
    for (const item of v) if (!jsonExact(item)) return false;
    return true;
  }
  for (const k in v as Record<string, unknown>) if (!jsonExact((v as Record<string, unknown>)[k])) return false;
  return true;
}
