/** readRegularFile: the one reader behind .env files and event data files. */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NotRegularFileError, readRegularFile } from '../../src/core/regular-file.js';
import { readDataFile } from '../../src/core/data-file.js';
import { readEnvText } from '../../src/core/env-file.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'alloy-regular-file-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const at = (name: string) => path.join(dir, name);

describe('readRegularFile', () => {
  it('reads a regular file (or a link to one) whole, and refuses the rest at once by kind', async () => {
    writeFileSync(at('a.txt'), 'hello');
    symlinkSync(at('a.txt'), at('link.txt'));
    execFileSync('mkfifo', [at('pipe')]);
    symlinkSync('/dev/zero', at('zero'));
    mkdirSync(at('folder'));
    writeFileSync(at('big'), '');
    truncateSync(at('big'), 11);
    expect((await readRegularFile(at('a.txt'), 5)).toString()).toBe('hello');
    expect((await readRegularFile(at('link.txt'), 5)).toString()).toBe('hello');
    const started = Date.now();
    for (const [name, kind] of [['pipe', 'special'], ['zero', 'special'], ['folder', 'folder'], ['big', 'too-large']] as const) {
      const err = await readRegularFile(at(name), 10).catch((e: unknown) => e);
      expect(err, name).toBeInstanceOf(NotRegularFileError);
      expect((err as NotRegularFileError).kind, name).toBe(kind);
      expect((err as NodeJS.ErrnoException).code, name).toBeUndefined();
    }
    expect(await readRegularFile(at('big'), 10).catch((e: NotRegularFileError) => [e.size, e.maxBytes])).toEqual([11, 10]);
    expect(Date.now() - started).toBeLessThan(2000);
    await expect(readRegularFile(at('missing'), 10)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it("keeps each caller's wording: event files and env files", async () => {
    await expect(readDataFile(at('pipe'))).rejects.toThrow('not a regular file (a pipe, a device or a socket)');
    await expect(readDataFile(at('folder'))).rejects.toThrow('not a regular file (a folder)');
    await expect(readEnvText(at('pipe'), '.env')).rejects.toMatchObject({ code: 'E_ENV_FILE', message: 'cannot read .env: not a regular file (a device, a pipe or a socket)' });
    await expect(readEnvText(at('folder'), '.env')).rejects.toMatchObject({ code: 'E_ENV_FILE', message: 'cannot read .env: it is a folder' });
    expect(await readEnvText(at('missing'), '.env')).toBeUndefined();
    expect(await readEnvText(path.join(at('a.txt'), 'below'), '.env')).toBeUndefined();
  });
});
