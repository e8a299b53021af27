import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/cli.js';
import { THIRD_PARTY_FIXTURES, readThirdPartyFixture } from '../helpers/fixtures.js';

/** Every file under a directory, relative, with / separators. */
function walk(dir: string, base = dir): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (name === 'node_modules' || name === 'dist') return [];
    return statSync(full).isDirectory() ? walk(full, base) : [path.relative(base, full).split(path.sep).join('/')];
  });
}

describe('bundled third-party fixtures', () => {
  const readme = readFileSync(path.join(THIRD_PARTY_FIXTURES, 'README.md'), 'utf8');
  const listed = new Map([...readme.matchAll(/^\| `([^`]+)` \|.*\| `([0-9a-f]{64})` \|$/gm)].map((m) => [m[1], m[2]]));

  it('are all listed in the provenance README with the hash they have', () => {
    const files = walk(THIRD_PARTY_FIXTURES).filter((f) => f !== 'README.md').sort();
    expect(files.length).toBeGreaterThanOrEqual(5);
    expect([...listed.keys()].sort()).toEqual(files);
    for (const f of files) expect(createHash('sha256').update(readThirdPartyFixture(f)).digest('hex'), f).toBe(listed.get(f));
  });

  it('are what tests, scripts and benches read: nothing reaches out of the repository into a sibling shared folder', () => {
    const offenders: string[] = [];
    for (const dir of ['test', 'src', 'scripts', 'bench', 'examples', '.ci']) {
      for (const rel of walk(path.join(REPO_ROOT, dir))) {
        if (!/\.(ts|mts|js|mjs|cjs|json|ya?ml|sh)$|^run$/.test(path.basename(rel))) continue;
        const text = readFileSync(path.join(REPO_ROOT, dir, rel), 'utf8');
        // A path that climbs out of the repository into a sibling `shared` directory.
        if (/['"]\.\.['"],\s*(['"]\.\.['"],\s*)?['"]shared['"]|\.\.\/shared\//.test(text) && rel !== 'connectors/bundled-fixtures.test.ts') offenders.push(`${dir}/${rel}`);
      }
    }
    expect(offenders).toEqual([]);
  });

  it('the example ships the same orders/create payload', () => {
    const example = readFileSync(path.join(REPO_ROOT, 'examples/shopify-sync/integrations/shopify-sync/fixtures/orders-create.json'));
    expect(example.equals(readThirdPartyFixture('shopify/orders-create.json'))).toBe(true);
  });
});
