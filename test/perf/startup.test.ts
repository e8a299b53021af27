/**
 * Issue 13, item 7: start-up. Timings live in bench/cli-startup.mjs (a loaded machine makes
 * them noisy); these tests pin what makes them fast, with the built binary: `--help` is
 * printed from the text the build wrote (no commander), the client commands reach the
 * runtime over node:http (no undici, no SQLite), and `validate` compiles no schema (the
 * meta-schema and the built-in action inputs are generated at build time, ajv never loaded).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { runCli } from '../../src/cli/main.js';
import { REPO_ROOT, tempDir } from '../server/helpers.js';
import { BIN, requireBuild, startDev } from '../runtime/helpers.js';

/** Runs the built binary and returns its output plus the CommonJS packages it loaded. */
async function runProbed(cwd: string, args: string[]) {
  const probe = path.join(tmp.dir, 'probe.mjs');
  const r = await execa(process.execPath, ['--import', probe, BIN, ...args], { cwd, reject: false, env: { NO_COLOR: '1' } });
  const line = r.stderr.split('\n').find((l) => l.startsWith('LOADED '));
  const loaded: string[] = line ? JSON.parse(line.slice(7)) : [];
  return { ...r, loaded, has: (pkg: string) => loaded.some((f) => f.includes(`/node_modules/${pkg}/`)) };
}

let tmp: ReturnType<typeof tempDir>;
let root: string;
beforeAll(() => {
  requireBuild();
  tmp = tempDir('alloy-startup-');
  writeFileSync(
    path.join(tmp.dir, 'probe.mjs'),
    `import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
process.on('exit', () => process.stderr.write('LOADED ' + JSON.stringify(Object.keys(require('node:module')._cache)) + '\\n'));
`,
  );
  root = path.join(tmp.dir, 'project');
  cpSync(path.join(REPO_ROOT, 'examples', 'shopify-sync'), root, { recursive: true });
});
afterAll(() => tmp?.cleanup());

describe('start-up', () => {
  it('alloy --help prints the help the CLI would, without loading commander', async () => {
    const r = await runProbed(root, ['--help']);
    expect(r.exitCode).toBe(0);
    expect(r.has('commander')).toBe(false);
    let text = '';
    const sink = { write: (s: string) => ((text += s), true) } as never;
    expect(await runCli(['--help'], { stdout: sink, stderr: sink, stdin: process.stdin, env: {}, cwd: root })).toBe(0);
    expect(r.stdout).toBe(text.trimEnd());
  });

  it('validate on the example compiles no schema: ajv itself is never loaded', async () => {
    const r = await runProbed(root, ['validate', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([]); // no diagnostics
    expect(r.loaded.filter((f) => f.includes('/node_modules/ajv/') && !f.includes('/ajv/dist/runtime/'))).toEqual([]);
    expect(r.has('ajv-formats')).toBe(false);
  });

  it('validate still reports a broken trigger schema and a bad action input (generated validators)', async () => {
    const broken = path.join(tmp.dir, 'broken');
    cpSync(root, broken, { recursive: true });
    const file = path.join(broken, 'integrations', 'shopify-sync', 'workflows', 'create-order.yaml');
    const { readFileSync } = await import('node:fs');
    const text = readFileSync(file, 'utf8');
    writeFileSync(file, text.replace(/schema:\s*\n(\s+)type: object/, 'schema:\n$1type: objekt').replace('      tags: [acme]', '      tags: 5'));
    const r = await runProbed(broken, ['validate', '--json']);
    expect(r.exitCode).toBe(2);
    expect(r.stdout).toContain('E_TRIGGER_SCHEMA_INVALID');
    expect(r.stdout).toContain('schema/type must be equal to one of the allowed values');
    // And the built-in action's input schema (generated too) still checks literal values.
    expect(r.stdout).toContain("field \\\"tags\\\" must be array, got number");
  });

  it('client commands talk to a running alloy dev without undici or SQLite', async () => {
    const dev = await startDev(root);
    try {
      for (const args of [['executions', '--json'], ['logs', '--json']]) {
        const r = await runProbed(root, args);
        expect(r.exitCode, `${args.join(' ')}: ${r.stderr}`).toBe(0);
        expect(r.has('undici')).toBe(false);
        expect(r.has('better-sqlite3')).toBe(false);
        expect(r.has('ajv')).toBe(false);
      }
    } finally {
      dev.proc.kill('SIGTERM');
      await dev.proc;
    }
  }, 60_000);
});
