import path from 'node:path';
import { readFile, writeFile } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalStore, createStoreServer, makeTokens, type StoreServer } from '../../src/store/index.js';
import { cleanupTempDirs, cli, integration, tempDir, workflow, writeProject, writeWorkflow } from './helpers.js';

afterEach(cleanupTempDirs);

const WRITE = 'write-token-0123456789abcdef';
const READ = 'read-token-0123456789abcdef';

type Target = { name: string; setup: (root: string) => Promise<{ flags: string[]; env: Record<string, string>; storeDir: string; stop: () => Promise<void> }> };

const targets: Target[] = [
  {
    name: 'local store',
    setup: async (root) => ({ flags: [], env: {}, storeDir: path.join(root, '.alloy', 'store'), stop: async () => {} }),
  },
  {
    name: 'alloy serve (remote via --remote origin)',
    setup: async (root) => {
      const storeDir = await tempDir('alloy-remote-');
      const server: StoreServer = createStoreServer({ store: new LocalStore(storeDir), tokens: makeTokens([{ role: 'write', token: WRITE }, { role: 'read', token: READ }]) });
      const url = await server.listen();
      const cfg = await readFile(path.join(root, 'alloy.config.yaml'), 'utf8');
      await writeFile(path.join(root, 'alloy.config.yaml'), `${cfg}remotes:\n  origin:\n    url: ${url}\n`);
      return { flags: ['--remote', 'origin'], env: { ALLOY_TOKEN: WRITE }, storeDir, stop: () => server.close() };
    },
  },
];

describe.each(targets)('store commands against the $name', (target) => {
  it('release, status, versions, diff, show, publish, rollback and fsck', async () => {
    const root = await tempDir();
    const shop = integration('shop', [workflow('create-order'), workflow('order-created')]);
    await writeProject(root, [shop]);
    const t = await target.setup(root);
    const run = (...args: string[]) => cli(root, [...args, ...t.flags], t.env);
    try {
      const r1 = await run('release', '-m', 'first', '--json');
      expect(r1.code).toBe(0);
      const rel1 = r1.json().releases[0];
      expect(rel1).toMatchObject({ integration: 'shop', status: 'released', version: 1 });
      expect(rel1.id).toMatch(/^[0-9a-f]{64}$/);

      const again = await run('release');
      expect(again.code).toBe(0);
      expect(again.stdout.trim()).toBe(`shop is up to date at v1 ${rel1.id.slice(0, 12)}`);

      // edit one workflow: a step added, a field changed, the trigger changed
      const edited = workflow('create-order', [
        { id: 'map', uses: 'transform', with: { email: '{{ event.customer.email }}' } },
        { id: 'notify', uses: 'http', with: { url: 'https://acme.example/n' } },
      ], { event: 'acme.order.created' });
      await writeWorkflow(root, 'shop', edited);

      const st = await run('status', '--json');
      expect(st.json().integrations[0]).toMatchObject({ integration: 'shop', latest: { version: 1 }, published: null, unreleased: true, changes: { changed: ['create-order'] } });

      const dry = await run('release', '--dry-run');
      expect(dry.stdout).toContain('shop would be released as v2');
      expect(dry.stdout).toContain('~ create-order');

      const d = await run('diff');
      expect(d.code).toBe(0);
      expect(d.stdout).toContain('shop: v1 → working tree');
      expect(d.stdout).toContain('trigger changed: event: "acme.create-order" → "acme.order.created"');
      expect(d.stdout).toContain('+ step notify at steps[1]');
      expect(d.stdout).toContain('~ step map with.email: "{{ event.email }}" → "{{ event.customer.email }}"');
      expect((await run('diff', '--exit-code')).code).toBe(1);

      const r2 = await run('release', '-m', 'second');
      expect(r2.code).toBe(0);
      expect(r2.stdout).toMatch(/^released shop v2 [0-9a-f]{12} \(1 workflow changed\)\n$/);

      const dv = await run('diff', 'shop@1', 'shop@2', '--json');
      const wf = dv.json().diffs[0].workflows;
      expect(wf.map((w: any) => [w.name, w.status])).toEqual([['create-order', 'changed']]);
      expect(wf[0].steps.map((s: any) => [s.id, s.change])).toEqual([['notify', 'added'], ['map', 'changed']]);
      expect((await run('diff', 'shop@1', '@2')).stdout).toContain('shop: v1 → v2');

      const show = await run('show', 'shop@1', 'create-order');
      expect(show.code).toBe(0);
      expect(show.stdout).toContain('event: acme.create-order');
      expect(show.stdout).toContain('# shop v1 ');
      const showAll = await run('show', 'shop@2', '--json');
      expect(Object.keys(showAll.json().definition.workflows)).toEqual(['create-order', 'order-created']);
      expect((await run('show', 'shop@2', 'nope')).code).toBe(1);
      expect((await run('show', 'shop@9')).code).toBe(1);

      expect((await run('publish', 'shop@1', '-m', 'go live')).stdout).toMatch(/^published shop v1 /);
      expect((await run('publish', 'shop@latest')).stdout).toContain('(was v1)');
      const vs = await run('versions', '--json');
      expect(vs.json().integrations[0].versions.map((v: any) => [v.version, v.message, v.published, v.author])).toEqual([
        [1, 'first', false, 'Test Author <test@example.com>'],
        [2, 'second', true, 'Test Author <test@example.com>'],
      ]);
      expect((await run('diff', '@published')).stdout).toContain('shop: no changes between v2 and working tree');

      const rb = await run('rollback', 'shop');
      expect(rb.code).toBe(0);
      expect(rb.stdout).toContain('rolled back shop to v1');
      expect((await run('status', '--json')).json().integrations[0].published.version).toBe(1);
      const rb2 = await run('rollback', 'shop', '--json');
      expect(rb2.code).toBe(1);
      expect(rb2.json().error.code).toBe('E_ROLLBACK_NOTHING');

      const f = await run('fsck', '--json');
      expect(f.code).toBe(0);
      expect(f.json()).toMatchObject({ ok: true, errors: 0, versions: 2 });
      // the server's store on disk is consistent too
      const direct = await cli(root, ['fsck', '--store', t.storeDir]);
      expect(direct.code).toBe(0);
      expect(direct.stdout).toMatch(/0 errors/);
    } finally {
      await t.stop();
    }
  });
});

describe('store commands: refusals and failures', () => {
  it('release refuses invalid definitions with exit 2 and writes nothing', async () => {
    const root = await tempDir();
    await writeProject(root, [integration('shop', [workflow('a')])]);
    await writeFile(path.join(root, 'integrations/shop/workflows/a.yaml'), 'apiVersion: alloy/v1\nkind: Workflow\nname: a\nsteps: 3\n');
    const r = await cli(root, ['release']);
    expect(r.code).toBe(2);
    const { readdir } = await import('node:fs/promises');
    expect(await readdir(root)).not.toContain('.alloy');
  });

  it('release refuses literal secrets naming file and field, exit 2, never printing the value', async () => {
    const root = await tempDir();
    const w = workflow('a', [{ id: 'call', uses: 'http', with: { url: 'https://x.example', headers: { 'X-Shopify-Access-Token': 'shpat_0123456789abcdef0123456789abcdef' } } }]);
    await writeProject(root, [integration('shop', [w])]);
    const r = await cli(root, ['release']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('integrations/shop/workflows/a.yaml: /steps/0/with/headers/X-Shopify-Access-Token looks like a Shopify access token');
    expect(r.stderr + r.stdout).not.toContain('shpat_0123');
    const j = await cli(root, ['release', '--json']);
    expect(j.json().error.code).toBe('E_LITERAL_SECRET');
    expect(j.stdout).not.toContain('shpat_0123');
  });

  it('a tampered object makes show fail naming the file, and fsck exit 1 naming it', async () => {
    const root = await tempDir();
    await writeProject(root, [integration('shop', [workflow('a')])]);
    const rel = (await cli(root, ['release', '--json'])).json().releases[0];
    const file = path.join(root, '.alloy/store/objects', rel.id.slice(0, 2), rel.id.slice(2));
    await writeFile(file, (await readFile(file, 'utf8')).replace('Test Author', 'Someone Else'));
    const show = await cli(root, ['show', 'shop@1']);
    expect(show.code).toBe(1);
    expect(show.stderr).toContain('E_STORE_CORRUPT');
    expect(show.stderr).toContain(file);
    const f = await cli(root, ['fsck']);
    expect(f.code).toBe(1);
    expect(f.stdout).toContain(file);
    expect(f.stdout).toMatch(/1 error\b/);
  });

  it('show prints YAML that parses back to the released definition', async () => {
    const root = await tempDir();
    const w = workflow('a', [{ id: 'check', if: '{{ event.ok }}', then: [{ id: 'inner', uses: 'transform', with: { long: `{{ ${'event.x & '.repeat(20)}"end" }}` } }] }]);
    await writeProject(root, [integration('shop', [w])]);
    await cli(root, ['release']);
    const out = (await cli(root, ['show', 'shop@1', 'a'])).stdout;
    const { parse } = await import('yaml');
    expect(parse(out)).toEqual(w);
    expect(out.split('\n').slice(2, 5)).toEqual(['apiVersion: alloy/v1', 'kind: Workflow', 'name: a']);
  });

  it('serve refuses to start without a data folder outside a project, or with short store tokens (exit 2)', async () => {
    const dir = await tempDir();
    const none = await cli(dir, ['serve', '--store', dir, '--port', '0']);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('--data');
    const short = await cli(dir, ['serve', '--store', dir, '--port', '0'], { ALLOY_SERVE_TOKENS: 'write:short' });
    expect(short.code).toBe(2);
    expect(short.stderr).toContain('shorter than 16');
    await writeFile(path.join(dir, 'tokens'), 'read:0123456789abcdef0123\nbogus\n');
    const badFile = await cli(dir, ['serve', '--store', dir, '--port', '0'], { ALLOY_SERVE_TOKENS_FILE: 'tokens' });
    expect(badFile.code).toBe(2);
    expect(badFile.stderr).toContain('ALLOY_SERVE_TOKENS_FILE: entry 2 is not role:token');
    expect(badFile.stderr).not.toContain('bogus');
  });

  it('a wrong ALLOY_TOKEN is a clear error naming the variable', async () => {
    const root = await tempDir();
    await writeProject(root, [integration('shop', [workflow('a')])]);
    const server = createStoreServer({ store: new LocalStore(await tempDir()), tokens: makeTokens([{ role: 'write', token: WRITE }]) });
    const url = await server.listen();
    try {
      const r = await cli(root, ['release', '--store', url], { ALLOY_TOKEN: 'not-the-token-at-all' });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('E_REMOTE_UNAUTHORIZED');
      expect(r.stderr).toContain('ALLOY_TOKEN');
      expect((await cli(root, ['versions', '--remote', 'nope'])).code).toBe(2);
    } finally {
      await server.close();
    }
  });
});

describe('untrusted text on the terminal', () => {
  it('a workflow naming a step with terminal control sequences: validate prints them escaped, never raw', async () => {
    const root = await tempDir();
    // OSC 0 sets the window title; CSI 2J clears the screen; \r returns over the line.
    const hostile = 'x\u001b]0;pwned\u0007\u001b[2J\rok';
    await writeProject(root, [integration('shop', [workflow('a', [{ id: hostile, uses: 'transform', with: { a: 1 } }])])]);
    const v = await cli(root, ['validate']);
    expect(v.code).toBe(2);
    expect(v.stdout + v.stderr).toContain('\\x1b]0;pwned\\x07');
    expect(v.stdout + v.stderr).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f]/);
  });
});

describe('--store naming no store', () => {
  it('fsck, versions, show and publish on a --store that is missing, a file or not a store are E_NO_STORE (exit 2); fsck passed and versions said "no releases"; release still creates one', async () => {
    const root = await tempDir();
    await writeProject(root, [integration('shop', [workflow('a')])], { release: { test: false } });
    await writeFile(path.join(root, 'a-file'), 'x');
    for (const store of ['./typo-store', './a-file', '.']) {
      for (const args of [['fsck'], ['versions'], ['show', 'shop@1'], ['publish', 'shop@1']]) {
        const r = await cli(root, [...args, '--store', store]);
        expect([args[0], store, r.code, r.stderr]).toEqual([args[0], store, 2, expect.stringContaining('E_NO_STORE')]);
      }
    }
    expect((await cli(root, ['release', '--store', './new-store', '-m', 'x'])).code).toBe(0);
    expect((await cli(root, ['fsck', '--store', './new-store'])).code).toBe(0);
    expect((await cli(root, ['versions', '--store', './new-store'])).stdout).toContain('v1');
  });
});

describe('--store and remotes that name a server without its scheme', () => {
  it('--store localhost:4200 is E_BAD_URL naming http://localhost:4200; nothing is released into a folder named so', async () => {
    const root = await tempDir();
    await writeProject(root, [integration('shop', [workflow('a')])], { release: { test: false } });
    const { readdir } = await import('node:fs/promises');
    const before = (await readdir(root)).sort();
    for (const value of ['localhost:4200', '10.0.0.5:4200', 'ftp://store.example']) {
      const r = await cli(root, ['release', '--store', value, '-m', 'x']);
      expect(r.code, value).toBe(2);
      expect(r.stderr).toContain('E_BAD_URL');
    }
    expect((await cli(root, ['release', '--store', 'localhost:4200'])).stderr).toContain('--store http://localhost:4200');
    expect((await readdir(root)).sort()).toEqual(before);
    // A folder really named so still works, written as a path.
    const ok = await cli(root, ['release', '--store', './localhost:4200', '-m', 'x']);
    expect(ok.code).toBe(0);
    expect((await cli(root, ['versions', '--store', 'localhost:4200'])).code).toBe(0);
  });

  it('an http(s) --store or remote url the URL parser refuses is E_BAD_URL (exit 2), not an internal error', async () => {
    const root = await tempDir();
    await writeProject(root, [integration('shop', [workflow('a')])], { remotes: { broken: { url: 'http://[::1' } } });
    for (const args of [['versions', '--store', 'http://[::1'], ['versions', '--store', 'https://exa mple.com'], ['versions', '--remote', 'broken']]) {
      const r = await cli(root, [...args, '--json']);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.json().error.code, args.join(' ')).toBe('E_BAD_URL');
    }
  });
});
