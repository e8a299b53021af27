/**
 * `alloy test`: test files beside workflows, run in process through the real engine with no
 * network; located failures with diffs, JUnit XML, snapshots, --bail/--filter/paths, and
 * the checks `alloy validate` makes of test files. Runs the CLI in process (runInProcess)
 * on copies of the bundled example.
 */
import { execFileSync } from 'node:child_process';
import { truncateSync, writeFileSync } from 'node:fs';
import { readFile, rm, writeFile, mkdir, symlink } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { copyExample, EXAMPLE_DIR, REPO_ROOT, runInProcess, tempDir } from '../helpers/cli.js';
import { eventOf } from '../../src/test-runner/run.js';

const EXAMPLE = EXAMPLE_DIR;
const TESTS = 'integrations/shopify-sync/tests';
const CREATE_ORDER = 'integrations/shopify-sync/workflows/create-order.yaml';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => {
  ({ dir, cleanup } = await copyExample());
});
afterEach(async () => cleanup());

async function edit(rel: string, from: string, to: string): Promise<void> {
  const file = path.join(dir, rel);
  const text = await readFile(file, 'utf8');
  expect(text, `${rel} holds ${from}`).toContain(from);
  await writeFile(file, text.replace(from, to));
}

/** Writes tests/<name> for `workflow`; `rest` is the YAML after the header. */
async function addTests(name: string, workflow: string, rest: string): Promise<void> {
  await writeFile(path.join(dir, TESTS, name), `apiVersion: alloy/v1\nkind: Test\nworkflow: ${workflow}\n${rest}`);
}

describe('the scaffold', () => {
  it('passes its tests, each workflow from its own file, in process (JSON summary)', async () => {
    const r = await runInProcess(['test', '--json'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary).toMatchObject({ ok: true, failed: 0, files: 4 });
    expect(summary.passed).toBeGreaterThanOrEqual(9);
    const files = new Set(summary.results.map((x: { file: string }) => x.file));
    expect(files).toEqual(new Set([`${TESTS}/create-order.test.yaml`, `${TESTS}/order-created.test.yaml`, `${TESTS}/tag-customer.test.yaml`, `${TESTS}/daily-digest.test.yaml`]));
  });

  it('prints one line per test and a summary line, like vitest', async () => {
    const r = await runInProcess(['test'], { cwd: dir });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/✓ integrations\/shopify-sync\/tests\/create-order\.test\.yaml > waits out Shopify's 429 and retries \d/);
    expect(r.stdout).toMatch(/Tests\s+9 passed \(9\)/);
  });
});

describe('a deliberately broken mapping', () => {
  it('fails with a diff and the file:line:col of the failed expectation, exit 1', async () => {
    await edit(CREATE_ORDER, 'shopifyOrderName: "{{ steps.order.output.name }}"', 'shopifyOrderName: "{{ steps.order.output.legacyResourceId }}"');
    const r = await runInProcess(['test'], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('× integrations/shopify-sync/tests/create-order.test.yaml > creates the order in Shopify and summarizes it for Acme');
    expect(r.stdout).toContain('AssertionError: step "result" output does not match');
    expect(r.stdout).toContain('-   "shopifyOrderName": "#1001"');
    expect(r.stdout).toContain('+   "shopifyOrderName": "1073460000"');
    // The key inside the flow mapping on line 24, not just the test.
    expect(r.stdout).toContain(`❯ ${TESTS}/create-order.test.yaml:24:63`);
    expect(r.stdout).toMatch(/> 24 \| +output: \{ acmeOrderId: acme-1001, shopifyOrderName: "#1001" \}/);
    expect(r.stdout).toMatch(/Tests\s+2 failed \| 7 passed \(9\)/);
  });

  it('JUnit XML names the failure with its location; --bail stops after it', async () => {
    await edit(CREATE_ORDER, 'shopifyOrderName: "{{ steps.order.output.name }}"', 'shopifyOrderName: "{{ steps.order.output.legacyResourceId }}"');
    const r = await runInProcess(['test', '--reporter', 'junit'], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stdout.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="alloy test" tests="9" failures="2"')).toBe(true);
    expect(r.stdout).toMatch(/<testcase classname="shopify-sync\/create-order" name="waits out Shopify&apos;s 429 and retries|<testcase classname="shopify-sync\/create-order" name="waits out Shopify's 429 and retries/);
    expect(r.stdout).toMatch(/<failure message="step &quot;result&quot; output does not match" type="AssertionError">integrations\/shopify-sync\/tests\/create-order\.test\.yaml:24:63/);
    expect(r.stdout.trimEnd().endsWith('</testsuites>')).toBe(true);

    const bail = await runInProcess(['test', '--bail', '--json'], { cwd: dir });
    const summary = JSON.parse(bail.stdout);
    expect(bail.code).toBe(1);
    expect(summary.failed).toBe(1);
    expect(summary.notRun).toBeGreaterThan(0);
  });
});

describe('no network', () => {
  let server: http.Server;
  let hits = 0;
  let port = 0;
  beforeEach(async () => {
    hits = 0;
    server = http.createServer((_req, res) => {
      hits++;
      res.end('{}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterEach(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('a request no test answers fails that test, showing the request; nothing leaves the process', async () => {
    await addTests(
      'unanswered.test.yaml',
      'create-order',
      `tests:
  - name: forgets to answer Shopify
    fixture: acme-order-requested.json
    # Even a reachable shop is never called: only answers, the fake and http entries answer.
    credentials: { shopify: { shop: "127.0.0.1:${port}", accessToken: shpat_test } }
    expect:
      status: failed
`,
    );
    const r = await runInProcess(['test', `${TESTS}/unanswered.test.yaml`], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(new RegExp(`a request no test answers: POST https://127\\.0\\.0\\.1:${port}/admin/api/[0-9-]+/graphql\\.json`));
    expect(r.stdout).toContain('body: {"query":"mutation orderCreate');
    expect(r.stdout).toContain(`${TESTS}/unanswered.test.yaml:5:11`);
    expect(r.stdout).not.toContain('shpat_test');
    expect(hits).toBe(0);
  });

  it('http entries answer by method and URL; request and assertion expectations are located', async () => {
    await writeFile(
      path.join(dir, 'integrations/shopify-sync/workflows/ping.yaml'),
      `apiVersion: alloy/v1
kind: Workflow
name: ping
trigger: { event: acme.ping }
steps:
  - id: call
    uses: http/request
    with: { method: POST, url: "https://api.acme.example/ping", body: { n: "{{ event.n }}" } }
`,
    );
    await addTests(
      'ping.test.yaml',
      'ping',
      `tests:
  - name: answered
    event: { n: 1 }
    http:
      - { method: POST, url: "https://api.acme.example/*", status: 200, body: { pong: true } }
    expect:
      steps: { call: { status: succeeded } }
      requests:
        - { method: POST, url: "https://api.acme.example/ping", body: { n: 1 }, count: 1 }
      assert:
        - "$count(requests) = 1"
  - name: wrong expectations
    event: { n: 2 }
    http:
      - { url: "https://api.acme.example/ping", body: { pong: true } }
    expect:
      requests:
        - { method: POST, url: "https://api.acme.example/ping", count: 2 }
      assert:
        - "$count(requests) = 5"
`,
    );
    const r = await runInProcess(['test', `${TESTS}/ping.test.yaml`, '--json'], { cwd: dir });
    const summary = JSON.parse(r.stdout);
    expect(r.code, r.stdout).toBe(1);
    const [ok, bad] = ['answered', 'wrong expectations'].map((n) => summary.results.find((x: { name: string }) => x.name === n));
    expect(ok.state, JSON.stringify(ok.failures)).toBe('passed');
    expect(bad.failures.map((f: { line: number; message: string }) => [f.line, f.message.split('\n')[0]])).toEqual([
      [21, 'expected 2 request(s) POST https://api.acme.example/ping, got 1; requests made:'],
      [23, 'assertion failed: $count(requests) = 5'],
    ]);
  });
});

describe('answers and the clock', () => {
  it('a 429 then success is retried on a virtual clock: no real waiting', async () => {
    await addTests(
      'slow.test.yaml',
      'create-order',
      `tests:
  - name: two long Retry-Afters
    fixture: acme-order-requested.json
    clock: "2026-03-01T10:00:00Z"
    answers:
      order:
        - { status: 429, retryAfter: 20 }
        - { status: 503, retryAfter: 20 }
        - returns: { id: "gid://shopify/Order/9", name: "#9" }
    expect:
      steps:
        order: { attempts: 3, status: succeeded }
        result: { output: { shopifyOrderId: "gid://shopify/Order/9" } }
      assert:
        - "steps.order.status = 'succeeded'"
`,
    );
    const started = Date.now();
    const r = await runInProcess(['test', `${TESTS}/slow.test.yaml`, '--json'], { cwd: dir });
    expect(r.code, r.stdout).toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});

describe('fixtures', () => {
  it('a fixture that is a named pipe or larger than an event file may be is refused at once, naming it', async () => {
    const integration = path.join(dir, 'integrations', 'shopify-sync');
    execFileSync('mkfifo', [path.join(integration, 'fixtures', 'pipe.json')]);
    // Sparse: 65 MiB by its size, nothing on disk. It was read whole, then failed as "not JSON".
    writeFileSync(path.join(integration, 'fixtures', 'huge.json'), '');
    truncateSync(path.join(integration, 'fixtures', 'huge.json'), 65 * 1024 * 1024);
    const started = Date.now();
    await expect(eventOf({ fixture: 'pipe.json' }, integration)).rejects.toThrow('cannot read fixture pipe.json: not a regular file');
    await expect(eventOf({ fixture: 'huge.json' }, integration)).rejects.toThrow(/cannot read fixture huge\.json: it is 68157440 bytes; event files are limited to/);
    expect(Date.now() - started).toBeLessThan(2000);
    await expect(eventOf({ fixture: 'missing.json' }, integration)).rejects.toThrow('cannot read fixture missing.json: ENOENT');
  });
});

describe('snapshots', () => {
  it('are written when missing, fail on a change, and --update rewrites them; CI never writes', async () => {
    const snap = path.join(dir, TESTS, '__snapshots__', 'order-created.test.yaml.snap.json');
    const shipped = JSON.parse(await readFile(snap, 'utf8'));
    expect(shipped['maps the Shopify order and streams it to Acme'].stream.steps.summary.output.total).toBe(598.94);

    await rm(snap);
    const ci = await runInProcess(['test', '--json', '--filter', 'streams it'], { cwd: dir, env: { CI: 'true' } });
    expect(ci.code).toBe(1);
    expect(JSON.parse(ci.stdout).results[0].failures[0].message).toContain('no snapshot stored, and CI=true does not write one');

    const first = await runInProcess(['test', '--json', '--filter', 'streams it'], { cwd: dir });
    expect(first.code).toBe(0);
    expect(JSON.parse(first.stdout).snapshots).toEqual({ written: 1, updated: 0 });
    expect(JSON.parse(await readFile(snap, 'utf8'))).toEqual(shipped);

    await edit('integrations/shopify-sync/workflows/order-created.yaml', '      phone: "{{ event.phone }}"\n', '');
    await edit(`${TESTS}/order-created.test.yaml`, '            total: 598.94\n', '            total: 598.94\n'); // expectations do not name phone
    const changed = await runInProcess(['test', '--filter', 'streams it'], { cwd: dir });
    expect(changed.code).toBe(1);
    expect(changed.stdout).toContain('snapshot mismatch (run `alloy test --update` to accept)');
    expect(changed.stdout).toContain('-       "phone": "+557734881234",');

    const updated = await runInProcess(['test', '-u', '--json', '--filter', 'streams it'], { cwd: dir });
    expect(updated.code).toBe(0);
    expect(JSON.parse(updated.stdout).snapshots).toEqual({ written: 0, updated: 1 });
    expect(JSON.parse(await readFile(snap, 'utf8'))['maps the Shopify order and streams it to Acme'].steps.summary.phone).toBeUndefined();
  });
});

describe('validate checks test files', () => {
  it('schema errors and unknown workflows are located, with the fix', async () => {
    await addTests(
      'bad.test.yaml',
      'create-ordr',
      `tests:
  - name: typo
    expcet: { status: succeeded }
`,
    );
    const r = await runInProcess(['validate', '--json'], { cwd: dir });
    expect(r.code).toBe(2);
    const found = JSON.parse(r.stdout).map((d: { file: string; line: number; column: number; code: string; hint?: string }) => [d.line, d.column, d.code, d.hint]);
    expect(found).toEqual(expect.arrayContaining([[6, 5, 'E_SCHEMA_UNKNOWN_KEY', 'did you mean "expect"?']]));
    await edit(`${TESTS}/bad.test.yaml`, 'expcet', 'expect');
    const again = await runInProcess(['validate', '--json'], { cwd: dir });
    expect(JSON.parse(again.stdout)).toEqual([
      expect.objectContaining({ file: `${TESTS}/bad.test.yaml`, line: 3, column: 11, code: 'E_TEST_UNKNOWN_WORKFLOW', hint: 'did you mean "create-order"?' }),
    ]);
    // `alloy test` and `alloy release` refuse (exit 2); a broken test never stops running the workflows.
    expect((await runInProcess(['test'], { cwd: dir })).code).toBe(2);
    expect((await runInProcess(['release', '--dry-run'], { cwd: dir })).code).toBe(2);
    const run = await runInProcess(['run', 'shopify-sync/create-order', '--event', '@integrations/shopify-sync/fixtures/acme-order-requested.json', '--dry-run'], { cwd: dir });
    expect(run.code, run.stderr).toBe(0);
  });

  it('a test file alone validates against the shipped schema', async () => {
    const r = await runInProcess(['validate', path.join(EXAMPLE, TESTS, 'create-order.test.yaml'), '--json'], { cwd: dir });
    expect(r.code, r.stdout).toBe(0);
  });
});

describe('skip and only', () => {
  it('only runs the tests marked only; the others are reported skipped (JUnit <skipped/>, names escaped)', async () => {
    await addTests(
      'focus.test.yaml',
      'create-order',
      `defaults:
  fixture: acme-order-requested.json
  answers: { shopify/createOrder: { returns: { id: "gid://shopify/Order/5", name: "#5" } } }
tests:
  - name: "focused <one> & only"
    only: true
    expect: { steps: { result: { output: { shopifyOrderName: "#5" } } } }
  - name: skipped one
    skip: true
    expect: { status: failed }
`,
    );
    const r = await runInProcess(['test', `${TESTS}/focus.test.yaml`, '--reporter', 'junit'], { cwd: dir });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('<testcase classname="shopify-sync/create-order" name="focused &lt;one&gt; &amp; only"');
    expect(r.stdout).toMatch(/name="skipped one" file="[^"]+" time="0.000">\n      <skipped\/>/);
    expect(r.stderr).toMatch(/Tests\s+1 passed \| 1 skipped \(2\)/);
  });
});

describe('paths, --filter and no tests', () => {
  it('runs only what is named, and says so when nothing matches', async () => {
    const one = JSON.parse((await runInProcess(['test', `${TESTS}/order-created.test.yaml`, '--json'], { cwd: dir })).stdout);
    expect(one.results.every((r: { file: string }) => r.file.endsWith('order-created.test.yaml'))).toBe(true);
    const filtered = JSON.parse((await runInProcess(['test', '-t', 'USD', '--json'], { cwd: dir })).stdout);
    expect(filtered.results.map((r: { name: string }) => r.name)).toEqual(['defaults the currency to USD']);
    const none = await runInProcess(['test', '--filter', 'no such test'], { cwd: dir });
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('no tests found matching "no such test"');
  });
});

describe('alloy release runs the tests', () => {
  it('refuses on a failing test, naming it; --skip-tests releases and says so in the message; release.test: false skips', async () => {
    await edit(CREATE_ORDER, 'shopifyOrderName: "{{ steps.order.output.name }}"', 'shopifyOrderName: "{{ steps.order.output.legacyResourceId }}"');
    const refused = await runInProcess(['release', '-m', 'broken'], { cwd: dir });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('E_TESTS_FAILED 2 test(s) failed, so nothing was released');
    expect(refused.stderr).toContain(`× ${TESTS}/create-order.test.yaml:24 > creates the order in Shopify and summarizes it for Acme`);
    expect(refused.stderr).toContain('--skip-tests');
    expect(JSON.parse((await runInProcess(['versions', '--json'], { cwd: dir })).stdout)).not.toMatchObject({ versions: [expect.anything()] });

    const skipped = await runInProcess(['release', '-m', 'hotfix', '--skip-tests', '--json'], { cwd: dir });
    expect(skipped.code, skipped.stderr).toBe(0);
    const versions = await runInProcess(['versions', 'shopify-sync', '--json'], { cwd: dir });
    expect(versions.stdout).toContain('hotfix [tests skipped: --skip-tests]');

    await edit('alloy.config.yaml', 'kind: Project\n', 'kind: Project\nrelease: { test: false }\n');
    await edit(CREATE_ORDER, 'acmeOrderId: "{{ event.orderId }}"', 'acmeOrderId: "{{ event.orderId }}-x"');
    const off = await runInProcess(['release', '-m', 'tests off'], { cwd: dir });
    expect(off.code, off.stderr).toBe(0);
    expect(off.stdout).toContain('released shopify-sync v2');
  });
});

describe('alloy release --skip-tests', () => {
  it('releases past a test file that does not parse (the hint offers --skip-tests for exactly this); without it, refuses', async () => {
    await writeFile(path.join(dir, TESTS, 'broken.test.yaml'), 'apiVersion: alloy/v1\nkind: Test\nworkflow: create-order\ntests:\n  - name: x\n    expect: { status: [succeeded\n');
    const refused = await runInProcess(['release', '-m', 'broken'], { cwd: dir });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('E_YAML_SYNTAX');
    const skipped = await runInProcess(['release', '-m', 'hotfix', '--skip-tests'], { cwd: dir });
    expect(skipped.code, skipped.stderr).toBe(0);
    expect(skipped.stdout).toContain('released shopify-sync v1');
  });
});

describe('the schema shipped with the scaffold', () => {
  it('is the package schema', async () => {
    await mkdir(dir, { recursive: true });
    expect(await readFile(path.join(EXAMPLE, 'schemas', 'test.schema.json'), 'utf8')).toBe(await readFile(path.join(REPO_ROOT, 'schemas', 'test.schema.json'), 'utf8'));
  });
});

/** Makes `at` (in the project) a symlink to a file outside it holding `content`; runs `alloy test args`. */
async function testWithLinkOut(at: string, content: string, args: string[]) {
  const outside = await tempDir();
  try {
    const secret = path.join(outside.dir, 'secret');
    await writeFile(secret, content);
    const link = path.join(dir, at);
    await rm(link, { force: true });
    await mkdir(path.dirname(link), { recursive: true });
    await symlink(secret, link);
    return await runInProcess(['test', ...args], { cwd: dir });
  } finally {
    await outside.cleanup();
  }
}

describe('fixtures and snapshots stay inside the project', () => {
  it('a symlink under fixtures/ pointing outside the project is refused, its target never read or shown', async () => {
    await addTests('linked.test.yaml', 'create-order', 'tests:\n  - name: reads a linked fixture\n    fixture: linked.json\n    expect: { steps: { result: { output: { acmeOrderId: x } } } }\n');
    const r = await testWithLinkOut('integrations/shopify-sync/fixtures/linked.json', '{"token": "outside-secret-1234"}', [`${TESTS}/linked.test.yaml`]);
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toContain('fixture "linked.json" is outside the integration\'s fixtures/ folder');
    expect(r.stdout + r.stderr).not.toContain('outside-secret-1234');
  });

  it('a snapshot file symlinked out of the project is not read, its target never shown', async () => {
    const r = await testWithLinkOut(`${TESTS}/__snapshots__/order-created.test.yaml.snap.json`, 'outside-secret-5678 not json', []);
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toContain('a link out of __snapshots__/');
    expect(r.stdout + r.stderr).toContain('E_SNAPSHOT');
    expect(r.stdout + r.stderr).not.toContain('internal error');
    expect(r.stdout + r.stderr).not.toContain('outside-secret-5678');
  });
});

describe('a broken snapshot file', () => {
  it('a merge conflict, an array or null in a snapshot file is E_SNAPSHOT naming the file (exit 2), not an internal error, and the file is left as it was', async () => {
    const file = path.join(dir, TESTS, '__snapshots__', 'order-created.test.yaml.snap.json');
    for (const content of ['<<<<<<< HEAD\n{}\n=======\n{}\n>>>>>>> theirs\n', '[1, 2]\n', 'null\n']) {
      await writeFile(file, content);
      for (const args of [['test'], ['test', '-u']]) {
        const r = await runInProcess(args, { cwd: dir });
        expect(r.code, content).toBe(2);
        expect(r.stderr, content).toContain('E_SNAPSHOT');
        expect(r.stderr, content).toContain(`${TESTS}/__snapshots__/order-created.test.yaml.snap.json`);
        expect(r.stderr, content).not.toContain('internal error');
        expect(await readFile(file, 'utf8')).toBe(content);
      }
    }
  });

  it('a snapshot file that cannot be read (a folder) is E_SNAPSHOT saying so, without the merge-conflict hint', async () => {
    const file = path.join(dir, TESTS, '__snapshots__', 'order-created.test.yaml.snap.json');
    await rm(file);
    await mkdir(file);
    const r = await runInProcess(['test', '--json'], { cwd: dir });
    expect(r.code, r.stdout).toBe(2);
    const error = JSON.parse(r.stdout).error;
    expect(error).toMatchObject({ code: 'E_SNAPSHOT', message: expect.stringContaining('it is a folder') });
    expect(error.hint).not.toContain('merge conflict');
  });

  it.skipIf(process.platform === 'win32')('a named pipe as a snapshot file is refused at once, unread (a read would block the run for ever)', async () => {
    const file = path.join(dir, TESTS, '__snapshots__', 'order-created.test.yaml.snap.json');
    await rm(file);
    execFileSync('mkfifo', [file]);
    const r = await runInProcess(['test', '--json'], { cwd: dir });
    expect(r.code, r.stdout).toBe(2);
    expect(JSON.parse(r.stdout).error).toMatchObject({ code: 'E_SNAPSHOT', message: expect.stringContaining('not a regular file') });
  });
});
