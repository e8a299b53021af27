import { readFile, writeFile, mkdir, readdir, symlink } from 'node:fs/promises';
import { execa } from 'execa';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BIN, REPO_ROOT, STACK_LINE, runBin, runInProcess, tempDir } from '../helpers/cli.js';
import { readThirdPartyFixture } from '../helpers/fixtures.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir()));
afterEach(async () => cleanup());

async function listTree(root: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(path.join(root, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await listTree(root, rel)));
    else out.push(rel);
  }
  return out.sort();
}

describe('alloy init', () => {
  it('scaffolds the Shopify sync project, which validates clean (built binary)', async () => {
    const init = await runBin(['init', 'demo', '--yes'], { cwd: dir });
    expect(init.code).toBe(0);
    expect(init.stdout).toContain('Next steps');
    const project = path.join(dir, 'demo');
    const files = await listTree(project);
    for (const f of [
      'alloy.config.yaml',
      '.gitignore',
      '.env.example',
      'README.md',
      'integrations/shopify-sync/integration.yaml',
      'integrations/shopify-sync/workflows/create-order.yaml',
      'integrations/shopify-sync/workflows/order-created.yaml',
      'integrations/shopify-sync/fixtures/orders-create.json',
      'integrations/shopify-sync/fixtures/acme-order-requested.json',
      'integrations/shopify-sync/workflows/tag-customer.yaml',
      'integrations/shopify-sync/workflows/daily-digest.yaml',
      'integrations/shopify-sync/fixtures/acme-customer-tagged.json',
    ]) {
      expect(files).toContain(f);
    }
    expect(await readFile(path.join(project, '.gitignore'), 'utf8')).toMatch(/^\.alloy\/$/m);
    expect(await readFile(path.join(project, '.gitignore'), 'utf8')).toMatch(/^\.env$/m);
    expect(await readFile(path.join(project, 'alloy.config.yaml'), 'utf8')).toContain('name: demo');

    const validate = await runBin(['validate'], { cwd: project });
    expect(validate.code).toBe(0);
    expect(validate.stdout).toContain('no problems');
  });

  it('copies the Shopify orders/create payload from the bundled third-party fixtures byte for byte', async () => {
    await runInProcess(['init', 'p', '--yes'], { cwd: dir });
    const ours = await readFile(path.join(dir, 'p', 'integrations/shopify-sync/fixtures/orders-create.json'));
    const theirs = readThirdPartyFixture('shopify/orders-create.json');
    expect(ours.equals(theirs)).toBe(true);
  });

  it('starts every YAML file with a yaml-language-server $schema line whose path resolves', async () => {
    await runInProcess(['init', 'p', '--yes'], { cwd: dir });
    const root = path.join(dir, 'p');
    const yamlFiles = (await listTree(root)).filter((f) => f.endsWith('.yaml'));
    expect(yamlFiles.length).toBe(10);
    for (const f of yamlFiles) {
      const first = (await readFile(path.join(root, f), 'utf8')).split('\n')[0];
      const m = /^# yaml-language-server: \$schema=(.+)$/.exec(first);
      expect(m, f).not.toBeNull();
      const schemaFile = path.resolve(path.dirname(path.join(root, f)), m![1]);
      const schema = JSON.parse(await readFile(schemaFile, 'utf8')) as { $schema: string };
      expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    }
  });

  it('never overwrites: an existing file makes it write nothing and name the conflict', async () => {
    await mkdir(path.join(dir, 'p'));
    await writeFile(path.join(dir, 'p', 'README.md'), 'mine\n');
    const r = await runInProcess(['init', 'p', '--yes'], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('E_INIT_CONFLICT');
    expect(r.stderr).toContain('README.md');
    expect(await readFile(path.join(dir, 'p', 'README.md'), 'utf8')).toBe('mine\n');
    expect(await listTree(path.join(dir, 'p'))).toEqual(['README.md']);
  });

  it('a link where it would write (a dangling file link, a linked folder) is a conflict: nothing written, nothing made where the links point', async () => {
    await mkdir(path.join(dir, 'p', 'integrations'), { recursive: true });
    await mkdir(path.join(dir, 'elsewhere'));
    await symlink(path.join(dir, 'gone'), path.join(dir, 'p', '.gitignore'));
    await symlink(path.join(dir, 'elsewhere'), path.join(dir, 'p', 'integrations', 'shopify-sync'));
    const r = await runInProcess(['init', 'p', '--yes'], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('E_INIT_CONFLICT');
    expect(r.stderr).toContain('.gitignore');
    expect(r.stderr).toContain('integrations/shopify-sync');
    expect(r.stderr).not.toContain('internal error');
    expect(await readdir(path.join(dir, 'elsewhere'))).toEqual([]);
    expect((await readdir(dir)).sort()).toEqual(['elsewhere', 'p']);
    expect((await readdir(path.join(dir, 'p'))).sort()).toEqual(['.gitignore', 'integrations']);
  });

  it('a file where a folder of the scaffold goes is a conflict: nothing written (it used to write four files, then fail as an internal error)', async () => {
    await mkdir(path.join(dir, 'p'));
    await writeFile(path.join(dir, 'p', 'integrations'), 'mine\n');
    const r = await runInProcess(['init', 'p', '--yes'], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('E_INIT_CONFLICT');
    expect(r.stderr).toContain('integrations');
    expect(r.stderr).not.toContain('internal error');
    expect(await listTree(path.join(dir, 'p'))).toEqual(['integrations']);
    expect(await readdir(dir)).toEqual(['p']);
  });

  it('a file, or a link to no folder, as the target is refused; a link to a folder, named by the user, is followed', async () => {
    await mkdir(path.join(dir, 'elsewhere'));
    await symlink(path.join(dir, 'elsewhere'), path.join(dir, 'link'));
    await symlink(path.join(dir, 'gone'), path.join(dir, 'dangling'));
    await writeFile(path.join(dir, 'file'), 'x');
    for (const target of ['dangling', 'file']) {
      const r = await runInProcess(['init', target, '--yes'], { cwd: dir });
      expect(r.code, target).toBe(1);
      expect(r.stderr).toContain('E_INIT_CONFLICT');
    }
    expect((await readdir(dir)).sort()).toEqual(['dangling', 'elsewhere', 'file', 'link']);
    const r = await runInProcess(['init', 'link', '--yes', '--name', 'linked'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(await readdir(path.join(dir, 'elsewhere'))).toContain('alloy.config.yaml');
    expect((await readdir(dir)).sort()).toEqual(['dangling', 'elsewhere', 'file', 'link']);
  });

  it('a file on the way to the target, or a place where no folder can be made, is said as such, not as a race or a bug', async () => {
    await writeFile(path.join(dir, 'file'), 'x');
    const underFile = await runInProcess(['init', 'file/p', '--yes'], { cwd: dir });
    expect([underFile.code, underFile.stderr.includes('E_INIT_CONFLICT'), underFile.stderr.includes('ENOTDIR')]).toEqual([1, true, true]);
    expect(underFile.stderr).toContain('a file or link is on the way');
    expect(underFile.stderr).not.toContain('appeared');
    if (process.platform === 'linux') {
      // /proc refuses new folders with ENOENT (it was "internal error … a bug in alloy").
      const proc = await runInProcess(['init', '/proc/1/alloy-p', '--yes'], { cwd: dir });
      expect([proc.code, proc.stderr.includes('E_INIT_WRITE'), proc.stderr.includes('no folder can be made there')]).toEqual([1, true, true]);
      expect(proc.stderr).not.toContain('internal error');
    }
    expect(await readdir(dir)).toEqual(['file']);
  });

  // A real failure part-way through the writes: the file size limit (ulimit -f, Node ignores
  // SIGXFSZ so the write fails with EFBIG) lets the small files through and stops at the first
  // big one. The old code left the files written before it, and called it a bug in alloy.
  const initUnderFileLimit = (args: string[]) =>
    execa('bash', ['-c', 'ulimit -f 2 && exec node "$0" "$@"', BIN, ...args], { cwd: dir, env: { NO_COLOR: '1', CI: 'true' }, reject: false });

  it.skipIf(process.platform === 'win32')('a write failing part-way into a new folder leaves nothing: no project, no temporary folder, no parent folders it made', async () => {
    const r = await initUnderFileLimit(['init', 'a/b/p', '--yes']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('E_INIT_WRITE');
    expect(r.stderr).toContain('EFBIG');
    expect(r.stderr).toContain('nothing was left behind');
    expect(r.stderr).not.toContain('internal error');
    expect(r.stderr).not.toMatch(STACK_LINE);
    expect(await readdir(dir)).toEqual([]);
    // And without the limit it works (the limit was the only problem).
    expect((await runBin(['init', 'a/b/p', '--yes'], { cwd: dir })).code).toBe(0);
    expect(await readdir(path.join(dir, 'a', 'b'))).toEqual(['p']);
  });

  it.skipIf(process.platform === 'win32')('a write failing part-way into an existing folder removes exactly what it made; what was there stays as it was', async () => {
    await mkdir(path.join(dir, 'p', 'integrations', 'other'), { recursive: true });
    await writeFile(path.join(dir, 'p', 'integrations', 'other', 'keep.yaml'), 'mine\n');
    await writeFile(path.join(dir, 'p', 'notes.txt'), 'mine too\n');
    const r = await initUnderFileLimit(['init', 'p', '--yes']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('E_INIT_WRITE');
    expect(await listTree(path.join(dir, 'p'))).toEqual(['integrations/other/keep.yaml', 'notes.txt']);
    expect(await readFile(path.join(dir, 'p', 'notes.txt'), 'utf8')).toBe('mine too\n');
    expect(await readdir(dir)).toEqual(['p']);
    // Into the same folder without the limit: the scaffold joins what is there.
    expect((await runBin(['init', 'p', '--yes'], { cwd: dir })).code).toBe(0);
    const files = await listTree(path.join(dir, 'p'));
    expect(files).toContain('integrations/other/keep.yaml');
    expect(files).toContain('integrations/shopify-sync/workflows/create-order.yaml');
    expect(await readdir(dir)).toEqual(['p']);
  });

  it('refuses to prompt without a TTY or under CI=true, naming the flags', async () => {
    const r = await runBin(['init', 'p'], { cwd: dir, env: { CI: 'true' } });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--yes');
    expect(r.stderr).toContain('--name');
    expect(r.stderr).toContain('--template');
    const noTty = await runBin(['init', 'p'], { cwd: dir, env: { CI: '' } });
    expect(noTty.code).toBe(2);
    expect(await readdir(dir)).toEqual([]);
  });

  it('takes --name and --template without --yes, and rejects an unknown template with a suggestion', async () => {
    const ok = await runInProcess(['init', 'x', '--name', 'acme-sync', '--template', 'shopify-sync', '--json'], { cwd: dir });
    expect(ok.code).toBe(0);
    const result = JSON.parse(ok.stdout) as { name: string; files: string[] };
    expect(result.name).toBe('acme-sync');
    expect(result.files).toContain('alloy.config.yaml');
    const bad = await runInProcess(['init', 'y', '--yes', '--template', 'shopify-synk'], { cwd: dir });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('did you mean --template shopify-sync?');
  });
});

describe('examples/shopify-sync', () => {
  it('validates clean', async () => {
    const r = await runInProcess(['validate', '--json'], { cwd: path.join(REPO_ROOT, 'examples', 'shopify-sync') });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([]);
  });

  it('is exactly what `alloy init --template shopify-sync` writes (one source, kept in step)', async () => {
    await runInProcess(['init', 'p', '--yes', '--name', 'shopify-sync-example'], { cwd: dir });
    const example = path.join(REPO_ROOT, 'examples', 'shopify-sync');
    const made = path.join(dir, 'p');
    const exampleFiles = (await listTree(example)).filter((f) => !f.startsWith('.alloy/') && f !== '.env');
    expect(await listTree(made)).toEqual(exampleFiles);
    for (const f of exampleFiles) {
      if (f === '.gitignore') continue;
      expect(await readFile(path.join(made, f), 'utf8'), f).toBe(await readFile(path.join(example, f), 'utf8'));
    }
  });

  it('ships the same JSON Schemas as the package', async () => {
    for (const name of ['workflow', 'integration', 'config', 'connector', 'test']) {
      const a = await readFile(path.join(REPO_ROOT, 'schemas', `${name}.schema.json`), 'utf8');
      const b = await readFile(path.join(REPO_ROOT, 'examples', 'shopify-sync', 'schemas', `${name}.schema.json`), 'utf8');
      expect(b, name).toBe(a);
    }
  });
});

describe("README's worked example", () => {
  it('a misspelled `with` in the scaffold is exactly one located error with the fix', async () => {
    await runInProcess(['init', 'demo', '--yes'], { cwd: dir });
    const file = path.join(dir, 'demo', 'integrations/shopify-sync/workflows/create-order.yaml');
    await writeFile(file, (await readFile(file, 'utf8')).replace('    with:', '    wth:'));
    const r = await runInProcess(['validate', '--json'], { cwd: path.join(dir, 'demo') });
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout)).toEqual([
      expect.objectContaining({
        file: 'integrations/shopify-sync/workflows/create-order.yaml',
        line: 31,
        column: 5,
        code: 'E_SCHEMA_UNKNOWN_KEY',
        message: 'unknown key "wth" in step "order"',
        hint: 'did you mean "with"?',
      }),
    ]);
    const human = await runInProcess(['validate'], { cwd: path.join(dir, 'demo') });
    expect(human.stdout).toContain('✖ 1 error, 0 warnings in 1 file (10 files checked)');
  });
});
