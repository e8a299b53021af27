/**
 * `alloy init` on a real terminal: util-linux `script` gives the built binary a pty, and
 * the answers are typed into it. Skipped where `script` is not installed.
 */
import { execFileSync } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BIN, tempDir } from '../helpers/cli.js';

const hasScript = (() => {
  try {
    execFileSync('script', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir()));
afterEach(async () => cleanup());

describe.skipIf(!hasScript)('alloy init on a TTY', () => {
  it('asks for the project name and template with prompts, then scaffolds', async () => {
    const child = execa('script', ['-qefc', `node ${BIN} init demo`, '/dev/null'], {
      cwd: dir,
      env: { CI: '', NO_COLOR: '1', TERM: 'xterm', COLUMNS: '100', LINES: '30' },
      extendEnv: true,
      reject: false,
      timeout: 20_000,
    });
    let output = '';
    const seen = (text: string) =>
      new Promise<void>((resolve) => {
        const check = () => (output.includes(text) ? resolve() : setTimeout(check, 25));
        check();
      });
    child.stdout!.on('data', (b: Buffer) => (output += b.toString()));
    await seen('Project name');
    child.stdin!.write('acme-sync\r');
    await seen('Template');
    child.stdin!.write('\r');
    await seen('Next steps');
    child.stdin!.end();
    const r = await child;
    expect(r.exitCode).toBe(0);
    expect(output).toContain('Created acme-sync');
    expect(await readFile(path.join(dir, 'demo', 'alloy.config.yaml'), 'utf8')).toContain('name: acme-sync');
  });

  it('Ctrl-C at a prompt prints "cancelled", exits 130 and writes nothing', async () => {
    const child = execa('script', ['-qefc', `node ${BIN} init demo`, '/dev/null'], {
      cwd: dir,
      env: { CI: '', NO_COLOR: '1', TERM: 'xterm', COLUMNS: '100', LINES: '30' },
      extendEnv: true,
      reject: false,
      timeout: 20_000,
    });
    let output = '';
    child.stdout!.on('data', (b: Buffer) => (output += b.toString()));
    await new Promise<void>((resolve) => {
      const check = () => (output.includes('Project name') ? resolve() : setTimeout(check, 25));
      check();
    });
    child.stdin!.write('\x03');
    const r = await child;
    expect(output).toContain('cancelled');
    expect(output).not.toMatch(/internal error|bug in alloy/);
    expect(r.exitCode).toBe(130);
    await expect(readdir(dir)).resolves.toEqual([]);
  });
});
