/**
 * The dependency direction from DESIGN.md, checked on the source: `cli` may import
 * everything and nothing imports `cli`; `core` imports nothing of ours but `errors` (and
 * the package-path helper); the engine gets store and runtime passed in, never imported.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './helpers/cli.js';

const SRC = path.join(REPO_ROOT, 'src');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Top-level area (`core`, `engine`, …, or the file name for src/*.ts) of each relative import. */
function importsOf(file: string): { area: string; typeOnly: boolean }[] {
  const text = readFileSync(file, 'utf8');
  const out: { area: string; typeOnly: boolean }[] = [];
  for (const m of text.matchAll(/^(import|export)\s+(type\s+)?[^'"]*?from\s+'(\.[^']+)'|import\('(\.[^']+)'\)/gm)) {
    const spec = m[3] ?? m[4];
    const target = path.relative(SRC, path.resolve(path.dirname(file), spec));
    out.push({ area: target.split(path.sep)[0], typeOnly: Boolean(m[2]) });
  }
  return out;
}

const areaOf = (file: string) => path.relative(SRC, file).split(path.sep)[0];

describe('architecture', () => {
  const all = files(SRC);

  it('nothing outside cli imports cli', () => {
    const offenders = all.filter((f) => areaOf(f) !== 'cli' && importsOf(f).some((i) => i.area === 'cli'));
    expect(offenders.map((f) => path.relative(REPO_ROOT, f))).toEqual([]);
  });

  it('core imports nothing of ours but errors and package paths', () => {
    const allowed = new Set(['core', 'errors.js', 'package-paths.js']);
    const offenders = all
      .filter((f) => areaOf(f) === 'core')
      .flatMap((f) => importsOf(f).filter((i) => !allowed.has(i.area)).map((i) => `${path.relative(REPO_ROOT, f)} -> ${i.area}`));
    expect(offenders).toEqual([]);
  });

  it('the engine imports no store, server, tunnel or cli code, and connectors only as types', () => {
    const offenders = all
      .filter((f) => areaOf(f) === 'engine')
      .flatMap((f) =>
        importsOf(f)
          .filter((i) => ['store', 'server', 'tunnel', 'cli'].includes(i.area) || (i.area === 'connectors' && !i.typeOnly))
          .map((i) => `${path.relative(REPO_ROOT, f)} -> ${i.area}`),
      );
    expect(offenders).toEqual([]);
  });
});
