/**
 * `alloy init` into an existing folder links the staged files in one by one; a failure between
 * two links must remove exactly what this run linked and made, and leave what was there. The
 * failure is injected at `link` (node:fs/promises, as init imports it): a disk filling up
 * part-way, and a filesystem without hard links (EXDEV), where init copies instead.
 */
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { runInProcess, tempDir } from '../helpers/cli.js';

const linkFailure = vi.hoisted(() => ({ code: '' as string, afterCalls: 0, calls: 0 }));
vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...real,
    link: async (from: string, to: string) => {
      linkFailure.calls++;
      if (linkFailure.code && linkFailure.calls > linkFailure.afterCalls) {
        throw Object.assign(new Error(`${linkFailure.code}: injected, link '${from}' -> '${to}'`), { code: linkFailure.code, path: to });
      }
      return real.link(from, to);
    },
  };
});

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => {
  ({ dir, cleanup } = await tempDir());
  Object.assign(linkFailure, { code: '', afterCalls: 0, calls: 0 });
});
afterEach(async () => cleanup());

async function tree(root: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(path.join(root, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    out.push(e.isDirectory() ? `${rel}/` : rel);
    if (e.isDirectory()) out.push(...(await tree(root, rel)));
  }
  return out.sort();
}

describe('alloy init into an existing folder, failing between links', () => {
  it('ENOSPC on the third link: the two files linked and the folders made are removed, what was there stays', async () => {
    const target = path.join(dir, 'existing');
    await mkdir(path.join(target, 'notes'), { recursive: true });
    await writeFile(path.join(target, 'notes', 'mine.txt'), 'keep me');
    const before = await tree(target);
    linkFailure.code = 'ENOSPC';
    linkFailure.afterCalls = 2;
    const r = await runInProcess(['init', 'existing', '--yes'], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('E_INIT_WRITE');
    expect(r.stderr).not.toContain('internal error');
    expect(linkFailure.calls).toBe(3);
    expect(await tree(target)).toEqual(before);
    expect(await readFile(path.join(target, 'notes', 'mine.txt'), 'utf8')).toBe('keep me');
    expect(await readdir(dir)).toEqual(['existing']); // no staging folder left beside it
  });

  it('EXDEV (no hard links across): every file is copied in instead, and the project is whole', async () => {
    const target = path.join(dir, 'existing');
    await mkdir(target);
    linkFailure.code = 'EXDEV';
    const r = await runInProcess(['init', 'existing', '--yes', '--name', 'copied'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const files = (await tree(target)).filter((f) => !f.endsWith('/'));
    expect(files).toContain('alloy.config.yaml');
    expect(files).toContain('integrations/shopify-sync/workflows/create-order.yaml');
    expect(linkFailure.calls).toBe(files.length);
    expect(await readdir(dir)).toEqual(['existing']);
  });
});
