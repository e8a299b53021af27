/**
 * The parsed-test-file cache (.alloy/cache/test-files.ndjson): used only for the exact text
 * it was made from, never read or written through a symbolic link, lossless values only, and
 * failures in a file loaded from it are still located by line.
 */
import { lstat, mkdir, readFile, readdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { builtinConnectorManifests } from '../../src/connectors/builtin-manifests.js';
import { createConnectorRegistry } from '../../src/connectors/registry.js';
import { loadProject } from '../../src/core/project.js';
import { sha256, testFileCachePath } from '../../src/core/test-file-cache.js';
import { runTests } from '../../src/test-runner/index.js';
import { copyExample, EXAMPLE_DIR } from '../helpers/cli.js';

const EXAMPLE = EXAMPLE_DIR;
const TEST_FILE = 'integrations/shopify-sync/tests/create-order.test.yaml';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => {
  ({ dir, cleanup } = await copyExample());
});
afterEach(async () => cleanup());

const load = (testFileCache = true) => loadProject(dir, { builtinConnectors: builtinConnectorManifests, testFileCache });
const testsOf = (p: Awaited<ReturnType<typeof load>>, file = TEST_FILE) =>
  (p.integrations[0].tests ?? []).find((t) => t.file === file)!.source.value as { tests: { name: string }[] };

/** The cache's entries by file (the header line dropped). */
async function entries(): Promise<Map<string, { sha256: string; value: unknown }>> {
  const lines = (await readFile(testFileCachePath(dir), 'utf8')).trim().split('\n');
  return new Map(lines.slice(1).map((l) => JSON.parse(l) as { file: string; sha256: string; value: unknown }).map((e) => [e.file, e]));
}

/** Replaces the value cached for `file`, keeping its hash, so a load that uses the entry shows it. */
async function plant(file: string, value: unknown): Promise<void> {
  const lines = (await readFile(testFileCachePath(dir), 'utf8')).trim().split('\n');
  const out = lines.map((l, i) => {
    if (i === 0) return l;
    const e = JSON.parse(l) as { file: string; sha256: string };
    return e.file === file ? JSON.stringify({ file: e.file, sha256: e.sha256, value }) : l;
  });
  await writeFile(testFileCachePath(dir), out.join('\n') + '\n');
}

describe('the test file cache', () => {
  it('is written on the first load (with a .gitignore), keyed by each file\'s sha256, with the values parsed', async () => {
    const first = await load();
    const cached = await entries();
    expect([...cached.keys()].sort()).toEqual(first.integrations[0].tests!.map((t) => t.file).sort());
    const text = await readFile(path.join(dir, TEST_FILE), 'utf8');
    expect(cached.get(TEST_FILE)).toEqual({ file: TEST_FILE, sha256: sha256(text), value: testsOf(first) });
    expect(await readFile(path.join(dir, '.alloy', 'cache', '.gitignore'), 'utf8')).toBe('*\n');
    // Without the option nothing is read from it.
    await plant(TEST_FILE, { ...testsOf(first), tests: [{ ...testsOf(first).tests[0], name: 'from the cache' }] });
    expect(testsOf(await load(false)).tests[0].name).not.toBe('from the cache');
  });

  it('is used only for the very text it was made from: an edited file is parsed again', async () => {
    const first = await load();
    await plant(TEST_FILE, { ...testsOf(first), tests: [{ ...testsOf(first).tests[0], name: 'from the cache' }] });
    expect(testsOf(await load()).tests[0].name).toBe('from the cache');
    // One character changed (a comment): the entry no longer applies, and is replaced.
    await writeFile(path.join(dir, TEST_FILE), `${await readFile(path.join(dir, TEST_FILE), 'utf8')}# edited\n`);
    const again = await load();
    expect(testsOf(again).tests[0].name).toBe(testsOf(first).tests[0].name);
    expect((await entries()).get(TEST_FILE)!.value).toEqual(testsOf(again));
  });

  it('ignores a cache from another format or version, and drops files that are gone', async () => {
    const first = await load();
    const text = await readFile(testFileCachePath(dir), 'utf8');
    const [header, ...rest] = text.trim().split('\n');
    const other = JSON.stringify({ ...JSON.parse(header), alloy: '0.0.0-other' });
    const planted = rest.map((l) => JSON.stringify({ ...JSON.parse(l), value: { ...JSON.parse(l).value, tests: [{ ...testsOf(first).tests[0], name: 'stale' }] } }));
    await writeFile(testFileCachePath(dir), [other, ...planted].join('\n') + '\n');
    expect(testsOf(await load()).tests[0].name).toBe(testsOf(first).tests[0].name);
    expect((await readFile(testFileCachePath(dir), 'utf8')).split('\n')[0]).toBe(header);

    const gone = 'integrations/shopify-sync/tests/daily-digest.test.yaml';
    expect((await entries()).has(gone)).toBe(true);
    await writeFile(path.join(dir, gone), '');
    await load();
    expect((await entries()).has(gone)).toBe(false);
  });

  it('keeps out values JSON would change (.nan, .inf, -0.0), which still load as themselves', async () => {
    const file = 'integrations/shopify-sync/tests/numbers.test.yaml';
    await writeFile(
      path.join(dir, file),
      'apiVersion: alloy/v1\nkind: Test\nworkflow: create-order\ntests:\n  - name: odd numbers\n    event: { a: .nan, b: -.inf, c: -0.0 }\n    expect: { status: failed }\n',
    );
    for (let i = 0; i < 2; i++) {
      const event = (testsOf(await load(), file) as unknown as { tests: { event: Record<string, number> }[] }).tests[0].event;
      expect(Number.isNaN(event.a)).toBe(true);
      expect(event.b).toBe(-Infinity);
      expect(Object.is(event.c, -0)).toBe(true);
      expect((await entries()).has(file)).toBe(false);
      expect((await entries()).has(TEST_FILE)).toBe(true);
    }
  });

  it('never writes through a symlinked .alloy/ or cache file, nor reads them', async () => {
    const elsewhere = path.join(dir, 'elsewhere');
    await mkdir(elsewhere);
    await symlink(elsewhere, path.join(dir, '.alloy'));
    const p = await load();
    expect(p.testDiagnostics).toEqual([]);
    expect(await readdir(elsewhere)).toEqual([]);

    // A real .alloy/cache whose cache file is a link to a file elsewhere (holding an entry
    // that would show if read): neither read nor written through; the link stays as it was.
    const { rm } = await import('node:fs/promises');
    await rm(path.join(dir, '.alloy'));
    const first = await load();
    await plant(TEST_FILE, { ...testsOf(first), tests: [{ ...testsOf(first).tests[0], name: 'from the link' }] });
    const target = path.join(elsewhere, 'victim.ndjson');
    await writeFile(target, await readFile(testFileCachePath(dir), 'utf8'));
    await rm(testFileCachePath(dir));
    await symlink(target, testFileCachePath(dir));
    const before = await readFile(target, 'utf8');
    expect(testsOf(await load()).tests[0].name).toBe(testsOf(first).tests[0].name);
    // An edit makes the load want to rewrite the cache.
    await writeFile(path.join(dir, TEST_FILE), `${await readFile(path.join(dir, TEST_FILE), 'utf8')}# edited\n`);
    await load();
    expect(await readFile(target, 'utf8')).toBe(before);
    expect((await lstat(testFileCachePath(dir))).isSymbolicLink()).toBe(true);
  });

  it('a failure in a file loaded from the cache is still located by line', async () => {
    const file = 'integrations/shopify-sync/tests/located.test.yaml';
    await writeFile(
      path.join(dir, file),
      [
        'apiVersion: alloy/v1',
        'kind: Test',
        'workflow: create-order',
        'tests:',
        '  - name: wrong name expected',
        '    event: { orderId: acme-1, email: a@example.com, lineItems: [{ title: T, quantity: 1, price: 1 }] }',
        '    answers:',
        '      shopify/createOrder: { returns: { id: "gid://shopify/Order/1", name: "#1" } }',
        '    expect:',
        '      steps:',
        '        result:',
        '          output:',
        '            shopifyOrderName: "#2"',
        '',
      ].join('\n'),
    );
    await load();
    const project = await load();
    const summary = await runTests({ project, connectors: createConnectorRegistry(), paths: [file] });
    expect(summary.failed).toBe(1);
    const [failure] = summary.results[0].failures;
    expect(failure.message).toBe('step "result" output does not match');
    expect([failure.line, failure.column]).toEqual([13, 31]);
    expect(failure.diff).toContain('-   "shopifyOrderName": "#2"');
  });
});
