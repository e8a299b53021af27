/** Counts in plain English: "1 version", "2 errors", never "1 versions" or "execution(s)". */
import { describe, expect, it } from 'vitest';
import { count } from '../../src/cli/render/count.js';
import { summarize } from '../../src/cli/render/diagnostics.js';
import { cleanupTempDirs, cli, integration, tempDir, workflow, writeProject } from '../store/helpers.js';

describe('counts', () => {
  it('singular for one, plural otherwise', () => {
    expect(count(1, 'version')).toBe('1 version');
    expect(count(0, 'version')).toBe('0 versions');
    expect(count(2, 'unfinished execution')).toBe('2 unfinished executions');
    expect(summarize([], 1).text).toBe('1 file checked, no problems');
  });

  it('fsck of a store with one version says "1 version" and "1 integration"', async () => {
    try {
      const root = await tempDir();
      await writeProject(root, [integration('shop', [workflow('a')])]);
      expect((await cli(root, ['release'])).code).toBe(0);
      const r = await cli(root, ['fsck']);
      expect(r.code).toBe(0);
      expect(r.stdout + r.stderr).toMatch(/checked \d+ objects? and 1 version in 1 integration: 0 errors, 0 warnings/);
    } finally {
      await cleanupTempDirs();
    }
  });
});
