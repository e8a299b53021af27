import { describe, expect, it } from 'vitest';
import {
  canonicalJson,
  checkObjectShape,
  encodeObject,
  normalizeDefinition,
  sha256Hex,
  buildTree,
  parseVersionSpec,
  publishStack,
} from '../../src/store/index.js';
import { integration, workflow } from './helpers.js';

describe('canonical JSON and ids', () => {
  it('sorts keys at every depth and drops whitespace', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: 'x' } })).toBe('{"a":{"c":"x","d":[1,{"y":2,"z":1}]},"b":1}');
  });
  it('gives the same id whatever the key order, and a different id for a different value', () => {
    const a = encodeObject({ type: 'workflow', def: workflow('w') });
    const reordered = JSON.parse(JSON.stringify({ def: { steps: a.value.def.steps, name: 'w', trigger: { event: 'acme.w' }, kind: 'Workflow', apiVersion: 'alloy/v1' }, type: 'workflow' }));
    const b = encodeObject(reordered);
    expect(b.id).toBe(a.id);
    expect(a.id).toBe(sha256Hex(a.bytes));
    expect(encodeObject({ type: 'workflow', def: workflow('w2') }).id).not.toBe(a.id);
  });
  it('refuses values JSON cannot hold', () => {
    expect(() => canonicalJson({ a: Number.NaN })).toThrow(/finite/);
    expect(() => canonicalJson({ a: new Map() })).toThrow(/plain object/);
  });
  it('normalizes undefined away so optional fields do not change the id', () => {
    const w = { ...workflow('w'), description: undefined };
    expect(canonicalJson(normalizeDefinition(w))).toBe(canonicalJson(workflow('w')));
  });
});

describe('object shapes', () => {
  it('accepts the three kinds and rejects others with a reason', () => {
    expect(checkObjectShape({ type: 'workflow', def: workflow('w') })).toHaveProperty('type', 'workflow');
    expect(checkObjectShape({ type: 'blob' })).toMatch(/unknown object type/);
    expect(checkObjectShape({ type: 'release', integration: 'x', version: 0 })).toMatch(/version/);
  });
  it('buildTree names workflows by name and hashes each once', () => {
    const tree = buildTree(integration('shop', [workflow('b'), workflow('a')]));
    expect(Object.keys(tree.ids.workflows)).toEqual(['a', 'b']);
    expect(tree.ids.workflows.a).toBe(tree.workflows.get('a')!.id);
  });
});

describe('version specs and the publish stack', () => {
  it('parses int@3, int@v3, @latest, @published and rejects junk', () => {
    expect(parseVersionSpec('shop@3')).toEqual({ integration: 'shop', selector: 3 });
    expect(parseVersionSpec('shop@v12')).toEqual({ integration: 'shop', selector: 12 });
    expect(parseVersionSpec('shop', 'latest')).toEqual({ integration: 'shop', selector: 'latest' });
    expect(parseVersionSpec('shop@published').selector).toBe('published');
    expect(() => parseVersionSpec('shop@0')).toThrow(/not a version/);
    expect(() => parseVersionSpec('../etc@1')).toThrow(/does not name an integration/);
    expect(() => parseVersionSpec('shop')).toThrow(/names no version/);
  });
  it('rollback pops: v1→v2→v3, rollback, rollback goes to v1', () => {
    const r = (version: number) => ({ version, id: String(version).repeat(64).slice(0, 64) });
    // Each entry starts where the previous one ended, as movePublished logs them.
    const e = (from: number | null, to: number, action: 'publish' | 'rollback' = 'publish') => ({ from: from === null ? null : r(from), to: r(to), action, who: 'x', when: 'now' });
    expect(publishStack([e(null, 1), e(1, 2), e(2, 3)]).map((x) => x.version)).toEqual([1, 2, 3]);
    expect(publishStack([e(null, 1), e(1, 2), e(2, 3), e(3, 2, 'rollback')]).map((x) => x.version)).toEqual([1, 2]);
    expect(publishStack([e(null, 1), e(1, 2), e(2, 3), e(3, 2, 'rollback'), e(2, 1, 'rollback')]).map((x) => x.version)).toEqual([1]);
  });
});

describe('provenance', () => {
  it('reads author, commit and CI run from GitHub Actions variables without running git', async () => {
    const { detectProvenance } = await import('../../src/store/index.js');
    const calls: string[][] = [];
    const run = async (_f: string, args: string[]) => {
      calls.push(args);
      return undefined;
    };
    const p = await detectProvenance(
      { GITHUB_SHA: 'A1B2C3D4E5F6A1B2C3D4E5F6A1B2C3D4E5F6A1B2', GITHUB_RUN_ID: '42', GITHUB_SERVER_URL: 'https://github.com', GITHUB_REPOSITORY: 'acme/int', GITHUB_ACTOR: 'octo' },
      '/nowhere',
      run,
    );
    expect(p).toEqual({
      author: 'octo',
      provenance: { commit: 'a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2', ci: { provider: 'github-actions', run: '42', url: 'https://github.com/acme/int/actions/runs/42' } },
    });
    expect(calls.map((c) => c.join(' '))).not.toContain('rev-parse HEAD');
  });

  it('falls back to git for author and commit', async () => {
    const { detectProvenance } = await import('../../src/store/index.js');
    const answers: Record<string, string> = { 'config user.name': 'Ann', 'config user.email': 'ann@example.com', 'rev-parse HEAD': 'abcdef1234567' };
    const p = await detectProvenance({}, '/repo', async (_f, args) => answers[args.join(' ')]);
    expect(p).toEqual({ author: 'Ann <ann@example.com>', provenance: { commit: 'abcdef1234567' } });
  });
});
