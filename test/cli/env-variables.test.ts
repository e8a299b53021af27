/**
 * One environment-variable scheme (ALLOY_<COMMAND>_<FLAG>, shared flags keep one name), read in
 * one place (src/cli/main.ts), listed in one README table; distinct default ports per server.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { flagEnvironmentVariables } from '../../src/cli/main.js';
import { DEFAULT_PORTS } from '../../src/cli/defaults.js';
import { REPO_ROOT, runInProcess } from '../helpers/cli.js';
import { cleanupTempDirs, cli, integration, tempDir, workflow, writeProject, writeWorkflow } from '../store/helpers.js';

const README = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
const section = README.slice(README.indexOf('## Environment variables'), README.indexOf('\n## ', README.indexOf('## Environment variables') + 5));
/** Variables named in the table's first column, and in its "deprecated" column. */
const tableRows = section.split('\n').filter((l) => l.startsWith('| `'));
const documented = new Set(tableRows.flatMap((l) => [...l.split('|')[1].matchAll(/`(ALLOY_[A-Z_]+)`/g)].map((m) => m[1])));
const documentedDeprecated = new Set(tableRows.flatMap((l) => [...(l.split('|')[3] ?? '').matchAll(/`(ALLOY_[A-Z_]+)`/g)].map((m) => m[1])));
const SHARED = new Set(['ALLOY_CWD', 'ALLOY_JSON', 'ALLOY_STORE', 'ALLOY_REMOTE']);

function srcFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? srcFiles(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []));
}

afterEach(cleanupTempDirs);

describe('environment variables', () => {
  const rows = flagEnvironmentVariables();

  it('every command flag is ALLOY_<COMMAND>_<FLAG>, except the few shared ones', () => {
    for (const r of rows) {
      if (SHARED.has(r.name)) continue;
      const expected = `ALLOY_${r.command.toUpperCase()}_${r.flag.replace(/^--/, '').replace(/-/g, '_').toUpperCase()}`;
      expect(r.name, `${r.command} ${r.flag}`).toBe(expected);
    }
    // The names the issue found side by side are now one family.
    const dev = rows.filter((r) => r.command === 'dev').map((r) => r.name);
    expect(dev).toEqual(expect.arrayContaining(['ALLOY_DEV_TUNNEL', 'ALLOY_DEV_TUNNEL_URL', 'ALLOY_DEV_TUNNEL_NAME', 'ALLOY_DEV_PORT']));
    expect(rows.some((r) => r.name === 'ALLOY_RELAY_URL' || r.name === 'ALLOY_TUNNEL_NAME')).toBe(false);
  });

  it('the README table lists every variable, and nothing that does not exist', () => {
    for (const r of rows) expect(documented, r.name).toContain(r.name);
    for (const r of rows) if (r.deprecated) expect(documentedDeprecated, r.deprecated).toContain(r.deprecated);
    // ... in the flag's own row (executions --user reads ALLOY_USER; its row did not say so).
    for (const r of rows) {
      if (!r.deprecated) continue;
      const row = tableRows.find((l) => [...l.split('|')[1].matchAll(/`(ALLOY_[A-Z_]+)`/g)].some((m) => m[1] === r.name));
      expect(row?.split('|')[3], `${r.command} ${r.flag}`).toContain(`\`${r.deprecated}\``);
    }
    // Variables the code reads directly (secrets, debug): documented too.
    const read = new Set<string>();
    for (const f of srcFiles(path.join(REPO_ROOT, 'src'))) {
      for (const m of readFileSync(f, 'utf8').matchAll(/\benv\.(ALLOY_[A-Z_]+)|'(ALLOY_[A-Z_]+)'/g)) read.add(m[1] ?? m[2]);
    }
    read.delete('ALLOY_TEST_CRASH_AT'); // test hook, not for users
    for (const name of read) if (!/^ALLOY_[A-Z]+$/.test(name) || ['ALLOY_TOKEN', 'ALLOY_DEBUG', 'ALLOY_AUTHOR', 'ALLOY_STORE', 'ALLOY_REMOTE', 'ALLOY_CWD', 'ALLOY_JSON'].includes(name)) {
      if (documentedDeprecated.has(name)) continue;
      expect(documented, name).toContain(name);
    }
    const known = new Set([...rows.map((r) => r.name), ...read]);
    for (const name of documented) expect(known, `README documents ${name}`).toContain(name);
  });

  it('a command-specific variable moves only its command; the old names still work with a note', async () => {
    const dev = await runInProcess(['dev', '--help']);
    expect(dev.stdout).toContain('ALLOY_DEV_TUNNEL_URL');
    expect(dev.stdout).not.toMatch(/\bALLOY_RELAY_URL\b/);
    // ALLOY_RELEASE_MESSAGE is not ALLOY_PUBLISH_MESSAGE: read through the same path, so check the options.
    expect(rows.find((r) => r.command === 'release' && r.flag === '--message')?.name).toBe('ALLOY_RELEASE_MESSAGE');
    expect(rows.find((r) => r.command === 'publish' && r.flag === '--message')?.name).toBe('ALLOY_PUBLISH_MESSAGE');
    expect(rows.find((r) => r.command === 'dev' && r.flag === '--tunnel-url')?.deprecated).toBe('ALLOY_RELAY_URL');
  });

  it('flags added after the scheme read no old name: ALLOY_TO no longer picks rollback\'s version, nor ALLOY_YES skips its question', async () => {
    // rollback --to and --yes came after ALLOY_<COMMAND>_<FLAG>, but read ALLOY_TO (emit's, replay's
    // URL) and ALLOY_YES (init's) as their own "old" names.
    for (const flag of ['--to', '--yes']) {
      const row = rows.find((r) => r.command === 'rollback' && r.flag === flag);
      expect(row?.name, flag).toBe(`ALLOY_ROLLBACK_${flag.slice(2).toUpperCase()}`);
      expect(row?.deprecated, flag).toBeUndefined();
    }
    const root = await tempDir();
    await writeProject(root, [integration('shop', [workflow('create-order')])]);
    expect((await cli(root, ['release', '-m', 'one'])).code).toBe(0);
    await writeWorkflow(root, 'shop', workflow('create-order', [{ id: 'map', uses: 'transform', with: { a: 1 } }]));
    expect((await cli(root, ['release', '-m', 'two'])).code).toBe(0);
    expect((await cli(root, ['publish', 'shop@1'])).code).toBe(0);
    expect((await cli(root, ['publish', 'shop@2'])).code).toBe(0);
    const rb = await cli(root, ['rollback', 'shop', '--json'], { ALLOY_TO: 'http://127.0.0.1:4000' });
    expect(rb.code, rb.stdout + rb.stderr).toBe(0);
    expect(rb.stderr).not.toContain('deprecated');
    expect((await cli(root, ['status', '--json'])).json().integrations[0].published.version).toBe(1);
    // Its own variable still works.
    const to = await cli(root, ['rollback', 'shop', '--json'], { ALLOY_ROLLBACK_TO: '2', ALLOY_YES: '0' });
    expect(to.code, to.stdout + to.stderr).toBe(0);
    expect((await cli(root, ['status', '--json'])).json().integrations[0].published.version).toBe(2);
  });

  it('serve, relay, dev and listen each have their own default port, none of them 8787', async () => {
    const ports = Object.values(DEFAULT_PORTS);
    expect(new Set(ports).size).toBe(ports.length);
    expect(ports).not.toContain(8787);
    const serve = await runInProcess(['serve', '--help']);
    const relay = await runInProcess(['relay', '--help']);
    expect(serve.stdout).toContain(`default ${DEFAULT_PORTS.serve}`);
    expect(relay.stdout).toContain(`default ${DEFAULT_PORTS.relay}`);
    for (const f of ['src/cli/commands/serve.ts', 'src/cli/commands/relay.ts', 'src/cli/registry/store.ts', 'src/cli/registry/tunnel.ts']) {
      expect(readFileSync(path.join(REPO_ROOT, f), 'utf8'), f).not.toContain('8787');
    }
  });
});

describe('dev --help', () => {
  it('says what a bare --tunnel picks', async () => {
    const help = (await runInProcess(['dev', '--help'])).stdout.replace(/\s+/g, ' ');
    expect(help).toContain('bare --tunnel: relay when --tunnel-url is set, else cloudflared');
  });
});
