import path from 'node:path';
import { it } from 'vitest';
import { REPO_ROOT, runInProcess } from '../helpers/cli.js';
it('scratch', async () => {
  const r = await runInProcess(['test'], { cwd: path.join(REPO_ROOT, 'examples', 'shopify-sync') });
  console.log(r.code, r.stdout, r.stderr);
});
