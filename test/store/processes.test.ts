/**
 * Real processes: two `alloy release` at once, a release killed (SIGKILL) at each phase via
 * the ALLOY_TEST_CRASH_AT test hook, an external SIGKILL during a loop of releases, and the
 * built `alloy serve` binary. Needs `npm run build` first (npm test does it).
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { execa, execaSync, type ResultPromise } from 'execa';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { binPath, cleanupTempDirs, distStore, integration, repoRoot, tempDir, workflow, writeProject, writeWorkflow } from './helpers.js';

const baseEnv = { ALLOY_AUTHOR: 'proc <p@example.com>', NO_COLOR: '1', PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' };
const alloy = (cwd: string, args: string[], env: Record<string, string> = {}) =>
  execa('node', [binPath, ...args], { cwd, env: { ...baseEnv, ...env }, extendEnv: false, reject: false, stdin: 'ignore' });

beforeAll(() => {
  if (!existsSync(path.join(repoRoot, 'dist', 'cli', 'main.js')) || !existsSync(distStore)) {
    throw new Error('dist/ is missing: run `npm run build` before these tests (npm test does)');
  }
});
afterEach(cleanupTempDirs);

async function fsckJson(cwd: string, storeArgs: string[] = []) {
  const r = await alloy(cwd, ['fsck', '--json', ...storeArgs]);
  return { code: r.exitCode, report: JSON.parse(String(r.stdout)) };
}

describe('concurrent releases (two real processes)', () => {
  it('same content released twice at once: one version and one "up to date"', async () => {
    const root = await tempDir();
    await writeProject(root, [integration('shop', [workflow('a'), workflow('b')])]);
    const [x, y] = await Promise.all([alloy(root, ['release', '--json']), alloy(root, ['release', '--json'])]);
    expect([x.exitCode, y.exitCode]).toEqual([0, 0]);
    const statuses = [x, y].map((r) => JSON.parse(String(r.stdout)).releases[0]).map((r) => `${r.status}:${r.version}`).sort();
    expect(statuses).toEqual(['released:1', 'up-to-date:1']);
    expect((await fsckJson(root)).report).toMatchObject({ errors: 0, versions: 1 });
  });

  it('different content into one store at once: two distinct versions, chained', async () => {
    const storeDir = await tempDir('alloy-shared-');
    const p1 = await tempDir();
    const p2 = await tempDir();
    await writeProject(p1, [integration('shop', [workflow('a')])]);
    await writeProject(p2, [integration('shop', [workflow('b')])]);
    const [x, y] = await Promise.all([alloy(p1, ['release', '--store', storeDir, '--json']), alloy(p2, ['release', '--store', storeDir, '--json'])]);
    expect([x.exitCode, y.exitCode]).toEqual([0, 0]);
    const versions = [x, y].map((r) => JSON.parse(String(r.stdout)).releases[0].version).sort();
    expect(versions).toEqual([1, 2]);
    const { report } = await fsckJson(p1, ['--store', storeDir]);
    expect(report).toMatchObject({ errors: 0, versions: 2 });
  });
});

describe('a release killed at any point (ALLOY_TEST_CRASH_AT test hook, SIGKILL)', () => {
  const phases = ['objects-written', 'lock-held', 'release-object-written', 'version-ref-created', 'released'];
  it.each(phases)('killed at %s: fsck finds the store consistent and a re-run completes', async (phase) => {
    const root = await tempDir();
    await writeProject(root, [integration('shop', [workflow('a')])]);
    expect((await alloy(root, ['release'])).exitCode).toBe(0);
    await writeWorkflow(root, 'shop', workflow('a', [{ id: 'changed', uses: 'transform' }]));
    const killed = await alloy(root, ['release'], { ALLOY_TEST_CRASH_AT: phase });
    expect(killed.signal).toBe('SIGKILL');
    const before = await fsckJson(root);
    expect(before.code).toBe(0);
    expect(before.report.errors).toBe(0);
    // The version exists exactly when the process died after its commit point.
    const committed = phase === 'version-ref-created' || phase === 'released';
    expect(before.report.versions).toBe(committed ? 2 : 1);
    const rerun = await alloy(root, ['release', '--json']);
    expect(rerun.exitCode, String(rerun.stdout) + String(rerun.stderr)).toBe(0);
    expect(JSON.parse(String(rerun.stdout)).releases[0]).toMatchObject({ status: committed ? 'up-to-date' : 'released', version: 2 });
    expect((await fsckJson(root)).report).toMatchObject({ errors: 0, versions: 2 });
  });

  it('killed mid-publish (log written, pointer not moved): fsck warns only; the pointer is unchanged', async () => {
    const root = await tempDir();
    await writeProject(root, [integration('shop', [workflow('a')])]);
    await alloy(root, ['release']);
    const killed = await alloy(root, ['publish', 'shop@1'], { ALLOY_TEST_CRASH_AT: 'publish-log-appended' });
    expect(killed.signal).toBe('SIGKILL');
    const { code, report } = await fsckJson(root);
    expect(code).toBe(0);
    expect(report.problems.map((p: any) => p.code)).toContain('W_STORE_LOG_AHEAD');
    const again = await alloy(root, ['publish', 'shop@1']);
    expect(again.exitCode).toBe(0);
    expect((await fsckJson(root)).report.errors).toBe(0);
  });

  it('an external SIGKILL during a loop of releases never leaves an inconsistent store', async () => {
    const storeDir = await tempDir('alloy-loop-');
    const worker = path.join(repoRoot, 'test', 'store', 'fixtures', 'release-loop.mjs');
    let lastVersions = 0;
    for (let round = 0; round < 4; round++) {
      const child: ResultPromise = execa('node', [worker, distStore, storeDir, '400'], { reject: false, stdin: 'ignore' });
      // wait until it has released at least once this round, then a random extra moment
      await new Promise<void>((resolve) => {
        child.stdout!.once('data', () => resolve());
        void child.then(() => resolve());
      });
      await new Promise((r) => setTimeout(r, 20 + Math.floor(Math.random() * 120)));
      child.kill('SIGKILL');
      const res = await child;
      expect(res.signal === 'SIGKILL' || res.exitCode === 0, String(res.stderr)).toBe(true);
      const r = await alloy(storeDir, ['fsck', '--json', '--store', storeDir]);
      const report = JSON.parse(String(r.stdout));
      expect(report.errors, JSON.stringify(report.problems)).toBe(0);
      expect(report.versions).toBeGreaterThan(lastVersions);
      lastVersions = report.versions;
    }
  });
});

describe('rollback interrupted between its log line and the pointer (real process, SIGKILL)', () => {
  it('a rollback killed at publish-log-appended can be re-run and goes to the previous version', async () => {
    const root = await tempDir();
    await writeProject(root, [integration('shop', [workflow('a')])]);
    for (const step of ['b', 'c']) {
      expect((await alloy(root, ['release'])).exitCode).toBe(0);
      await writeWorkflow(root, 'shop', workflow('a', [{ id: step, uses: 'transform' }]));
    }
    expect((await alloy(root, ['release'])).exitCode).toBe(0);
    for (const v of [1, 2, 3]) expect((await alloy(root, ['publish', `shop@${v}`])).exitCode).toBe(0);
    const killed = await alloy(root, ['rollback', 'shop'], { ALLOY_TEST_CRASH_AT: 'publish-log-appended' });
    expect(killed.signal).toBe('SIGKILL');
    const retried = await alloy(root, ['rollback', 'shop', '--json']);
    expect(retried.exitCode, String(retried.stderr)).toBe(0);
    expect(JSON.parse(String(retried.stdout))).toMatchObject({ ok: true, ref: { version: 2 }, previous: { version: 3 } });
    expect((await fsckJson(root)).report.errors).toBe(0);
  });
});

/** Parses `strace -f -y` output into completed calls (joining "unfinished ... resumed" pairs across threads). */
function straceCalls(text: string): { name: string; args: string; result: string }[] {
  const calls: { name: string; args: string; result: string }[] = [];
  const pending = new Map<string, { name: string; args: string; at: number }>();
  for (const line of text.split('\n')) {
    let m = /^(\d+)\s+(\w+)\((.*) <unfinished \.\.\.>$/.exec(line);
    if (m) {
      // Keep its place in the order it started (the syscall was entered here).
      calls.push({ name: m[2], args: m[3], result: '?' });
      pending.set(m[1], { name: m[2], args: m[3], at: calls.length - 1 });
      continue;
    }
    m = /^(\d+)\s+<\.\.\. (\w+) resumed>.*\)\s+=\s+(-?\d+)/.exec(line);
    if (m) {
      const p = pending.get(m[1]);
      if (p) calls[p.at].result = m[3];
      pending.delete(m[1]);
      continue;
    }
    m = /^(\d+)\s+(\w+)\((.*)\)\s+=\s+(-?\d+)/.exec(line);
    if (m) calls.push({ name: m[2], args: m[3], result: m[4] });
  }
  return calls;
}

const hasStrace = (() => {
  try {
    return execaSync('strace', ['-V'], { reject: false }).exitCode === 0;
  } catch {
    return false;
  }
})();

describe.skipIf(!hasStrace)('directories are fsynced (strace of the built binary)', () => {
  it('a first release and publish into a new store fsync the parent of every directory they create, and the log folder before the pointer moves', async () => {
    const root = await tempDir();
    await writeProject(root, [integration('shop', [workflow('a'), workflow('b')])]);
    const storeDir = path.join(await tempDir('alloy-strace-'), 'deep', 'store');
    const traced = async (args: string[]) => {
      const log = path.join(root, `strace-${args[0]}.log`);
      const r = await execa('strace', ['-f', '-y', '-qq', '-e', 'trace=mkdir,mkdirat,fsync,rename,renameat,renameat2', '-o', log, 'node', binPath, ...args, '--store', storeDir], {
        cwd: root, env: baseEnv, extendEnv: false, reject: false, stdin: 'ignore',
      });
      expect(r.exitCode, String(r.stderr)).toBe(0);
      return straceCalls(await readFile(log, 'utf8'));
    };
    const release = await traced(['release']);
    const publish = await traced(['publish', 'shop@1']);
    const top = path.dirname(path.dirname(storeDir));
    for (const calls of [release, publish]) {
      const made = calls.flatMap((c, i) => {
        if ((c.name !== 'mkdir' && c.name !== 'mkdirat') || c.result !== '0') return [];
        const dir = /"([^"]+)"/.exec(c.args)?.[1];
        return dir && dir.startsWith(top) ? [{ dir, i }] : [];
      });
      expect(made.length).toBeGreaterThan(0);
      const fsynced = calls.flatMap((c, i) => (c.name === 'fsync' ? [{ path: /<([^>]+)>/.exec(c.args)?.[1], i }] : []));
      for (const { dir, i } of made) {
        expect(fsynced.some((f) => f.path === path.dirname(dir) && f.i > i), `parent of ${dir} fsynced after it was made`).toBe(true);
      }
    }
    // The publish made logs/ and logs/shop/ (checked above) and created the log file: its
    // folder is fsynced before the pointer is renamed into place.
    const logDirSync = publish.findIndex((c) => c.name === 'fsync' && c.args.includes(`<${path.join(storeDir, 'logs', 'shop')}>`));
    const pointerRename = publish.findIndex((c) => c.name.startsWith('rename') && c.args.includes(path.join(storeDir, 'refs', 'shop', 'published')));
    expect(logDirSync).toBeGreaterThanOrEqual(0);
    expect(pointerRename).toBeGreaterThan(logDirSync);
  }, 60_000);
});

describe('alloy serve (built binary) as a remote store', () => {
  it('serves on 127.0.0.1, takes releases with a write token, refuses wrong tokens, stops on SIGTERM', async () => {
    const storeDir = await tempDir('alloy-served-');
    const root = await tempDir();
    await writeProject(root, [integration('shop', [workflow('a')])]);
    const WRITE = 'e2e-write-token-0123456789';
    const READ = 'e2e-read-token-0123456789';
    const dataDir = await tempDir('alloy-serve-data-');
    const serve = execa('node', [binPath, 'serve', '--port', '0', '--store', storeDir, '--data', dataDir, '--json'], {
      env: { ...baseEnv, ALLOY_SERVE_TOKENS: `read:${READ},write:${WRITE}` },
      extendEnv: false,
      reject: false,
      stdin: 'ignore',
    });
    try {
      const first = await new Promise<string>((resolve, reject) => {
        let buf = '';
        serve.stdout!.on('data', (d: Buffer) => {
          buf += d.toString();
          if (buf.trim().endsWith('}')) resolve(buf);
        });
        void serve.then((r) => reject(new Error(`serve exited: ${r.stderr}`)));
      });
      const { url } = JSON.parse(first);
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

      const denied = await alloy(root, ['release', '--store', url], { ALLOY_TOKEN: READ });
      expect(denied.exitCode).toBe(1);
      expect(String(denied.stderr)).toContain('E_REMOTE_FORBIDDEN');
      const unknown = await alloy(root, ['versions', '--store', url], { ALLOY_TOKEN: 'who-knows-who-knows' });
      expect(String(unknown.stderr)).toContain('E_REMOTE_UNAUTHORIZED');

      const ok = await alloy(root, ['release', '--store', url, '-m', 'via http'], { ALLOY_TOKEN: WRITE });
      expect(ok.exitCode).toBe(0);
      expect(String(ok.stdout)).toMatch(/^released shop v1 [0-9a-f]{12}/);
      const pub = await alloy(root, ['publish', 'shop@1', '--store', url], { ALLOY_TOKEN: WRITE });
      expect(pub.exitCode).toBe(0);
      const vs = await alloy(root, ['versions', 'shop', '--store', url, '--json'], { ALLOY_TOKEN: READ });
      expect(JSON.parse(String(vs.stdout)).integrations[0].versions[0]).toMatchObject({ version: 1, message: 'via http', published: true });
      // The server wrote a normal store: verify it from disk.
      expect(JSON.parse(await readFile(path.join(storeDir, 'refs', 'shop', 'published'), 'utf8'))).toMatchObject({ version: 1 });
      expect((await fsckJson(root, ['--store', storeDir])).report.errors).toBe(0);

      // Two releases of different content at once against the server: v2 and either v3 or a clear lost race.
      const p2 = await tempDir();
      await writeProject(p2, [integration('shop', [workflow('b')])]);
      await writeWorkflow(root, 'shop', workflow('a', [{ id: 'z', uses: 'transform' }]));
      const [x, y] = await Promise.all([
        alloy(root, ['release', '--store', url, '--json'], { ALLOY_TOKEN: WRITE }),
        alloy(p2, ['release', '--store', url, '--json'], { ALLOY_TOKEN: WRITE }),
      ]);
      const outcomes = [x, y].map((r) => JSON.parse(String(r.stdout)));
      for (const [i, o] of outcomes.entries()) {
        if (!o.ok) {
          expect(o.error.code).toBe('E_STORE_RACE_LOST');
          const again = await alloy(i === 0 ? root : p2, ['release', '--store', url, '--json'], { ALLOY_TOKEN: WRITE });
          expect(again.exitCode).toBe(0);
        }
      }
      const after = await alloy(root, ['versions', 'shop', '--store', url, '--json'], { ALLOY_TOKEN: READ });
      expect(JSON.parse(String(after.stdout)).integrations[0].versions.map((v: any) => v.version)).toEqual([1, 2, 3]);
      expect((await fsckJson(root, ['--store', storeDir])).report.errors).toBe(0);
    } finally {
      serve.kill('SIGTERM');
      const res = await serve;
      expect(res.exitCode).toBe(0);
    }
  }, 60_000); // seven CLI processes and a server that now also opens the runtime state: slow on a loaded 2-core machine
});
