/**
 * The Install section's path until the package is published: `npm pack`, install the tarball
 * into a fresh prefix, run the installed `alloy`. Install scripts are skipped here (they only
 * compile better-sqlite3, which neither `--version` nor `init` loads, and take minutes on a
 * busy machine); dependencies come from the npm cache when it has them.
 */
import { readFileSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, tempDir } from '../helpers/cli.js';

const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8'));

describe('install from a packed tarball', () => {
  let work: Awaited<ReturnType<typeof tempDir>>;
  let files: string[] = [];
  let prefix = '';
  let alloy = '';

  beforeAll(async () => {
    work = await tempDir('alloy-pack-');
    // dist/ is already built (npm test builds first); prepack would rebuild it.
    const packed = await execa('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work.dir], { cwd: REPO_ROOT });
    const [info] = JSON.parse(packed.stdout) as { filename: string; files: { path: string }[] }[];
    files = info.files.map((f) => f.path);
    prefix = path.join(work.dir, 'prefix');
    await execa('npm', ['install', '-g', '--prefix', prefix, '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund', path.join(work.dir, info.filename)], {
      cwd: work.dir,
      env: { npm_config_update_notifier: 'false' },
    });
    alloy = path.join(prefix, 'bin', 'alloy');
  }, 300_000);
  afterAll(async () => work?.cleanup());

  it('ships the binary, the build, schemas, the example, the third-party fixtures and docs, and no tests', () => {
    for (const f of ['bin/alloy.js', 'dist/cli/main.js', 'dist/testing/index.js', 'schemas/workflow.schema.json', 'examples/shopify-sync/alloy.config.yaml', 'fixtures/third-party/README.md', 'fixtures/third-party/shopify/rest-orders-create-examples.json', 'docs/engine.md', 'docs/http-api.md', 'README.md', 'package.json']) {
      expect(files, f).toContain(f);
    }
    expect(files.filter((f) => f.startsWith('test/') || f.startsWith('src/'))).toEqual([]);
  });

  it('every docs file named in a hint is in the package', async () => {
    const srcFiles = (await readdir(path.join(REPO_ROOT, 'src'), { recursive: true })).filter((f) => f.endsWith('.ts'));
    const named = new Set<string>();
    for (const f of srcFiles) {
      for (const m of (await readFile(path.join(REPO_ROOT, 'src', f), 'utf8')).matchAll(/(?<![\w./])docs\/([\w-]+\.md)/g)) named.add(`docs/${m[1]}`);
    }
    expect(named.size).toBeGreaterThan(0);
    for (const d of named) expect(files, d).toContain(d);
  });

  it('says where the project lives', () => {
    expect(pkg.repository.url).toMatch(/^git\+https:\/\/github\.com\/alloy-integrations\/alloy\.git$/);
    expect(pkg.homepage).toMatch(/^https:\/\//);
    expect(pkg.bugs.url).toMatch(/\/issues$/);
  });

  it('the installed alloy prints its version and scaffolds a project', async () => {
    const v = await execa(alloy, ['--version'], { reject: false });
    expect(v.exitCode).toBe(0);
    expect(v.stdout.trim()).toBe(pkg.version);
    const init = await execa(alloy, ['init', 'demo', '--yes'], { cwd: work.dir, reject: false, env: { CI: 'true', NO_COLOR: '1' } });
    expect(init.stderr).not.toMatch(/internal error/);
    expect(init.exitCode).toBe(0);
    const config = await readFile(path.join(work.dir, 'demo', 'alloy.config.yaml'), 'utf8');
    expect(config).toContain('name: demo');
    const order = await readFile(path.join(work.dir, 'demo', 'integrations/shopify-sync/fixtures/orders-create.json'));
    expect(order.equals(readFileSync(path.join(REPO_ROOT, 'fixtures/third-party/shopify/orders-create.json')))).toBe(true);
    const validate = await execa(alloy, ['validate'], { cwd: path.join(work.dir, 'demo'), reject: false, env: { CI: 'true', NO_COLOR: '1' } });
    expect(validate.exitCode).toBe(0);
  });

  it('the programmatic import in docs/engine.md resolves in the installed package', async () => {
    const doc = await readFile(path.join(REPO_ROOT, 'docs/engine.md'), 'utf8');
    const specifiers = [...doc.matchAll(/from '(alloy-integrations[^']*)'/g)].map((m) => m[1]);
    expect(specifiers.length).toBeGreaterThan(0);
    const installed = path.join(prefix, 'lib', 'node_modules', 'alloy-integrations');
    for (const s of specifiers) {
      const r = await execa('node', ['--input-type=module', '-e', `import * as m from ${JSON.stringify(s)}; process.stdout.write(String(typeof m.verifyStandardWebhook))`], {
        cwd: installed,
        reject: false,
      });
      expect(r.stdout, `${s}: ${r.stderr}`).toBe('function');
    }
  });
});
