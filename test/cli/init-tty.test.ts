/**
 * `alloy init` on a real terminal: util-linux `script` gives the built binary a pty, and
 * the answers are typed into it. Skipped where `script` is not installed.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BIN, tempDir } from '../helpers/cli.js';
import { hasScript, inPty } from '../helpers/pty.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir()));
afterEach(async () => cleanup());

describe.skipIf(!hasScript)('alloy init on a TTY', () => {
  it('asks for the project name and template with prompts, then scaffolds', async () => {
    const { child, output, seen } = inPty(`node ${BIN} init demo`, dir);
    await seen('Project name');
    child.stdin!.write('acme-sync\r');
    await seen('Template');
    child.stdin!.write('\r');
    await seen('Next steps');
    child.stdin!.end();
    const r = await child;
    expect(r.exitCode).toBe(0);
    expect(output()).toContain('Created acme-sync');
    expect(await readFile(path.join(dir, 'demo', 'alloy.config.yaml'), 'utf8')).toContain('name: acme-sync');
  });

  it('Ctrl-C at a prompt prints "cancelled", exits 130 and writes nothing', async () => {
    const { child, output, seen } = inPty(`node ${BIN} init demo`, dir);
    await seen('Project name');
    child.stdin!.write('\x03');
    const r = await child;
    expect(output()).toContain('cancelled');
    expect(output()).not.toMatch(/internal error|bug in alloy/);
    expect(r.exitCode).toBe(130);
    await expect(readdir(dir)).resolves.toEqual([]);
  });
});
