import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runInProcess, tempDir } from '../helpers/cli.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir()));
afterEach(async () => cleanup());

const INTEGRATION = 'apiVersion: alloy/v1\nkind: Integration\nname: shop\napp: shopify\n';
const WORKFLOW = 'apiVersion: alloy/v1\nkind: Workflow\nname: one\ntrigger: { event: acme.x }\nsteps:\n  - id: a\n    uses: transform\n    with: { x: "{{ event.x }}" }\n';

async function writeTree(root: string, files: Record<string, string>) {
  for (const [rel, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(root, rel)), { recursive: true });
    await writeFile(path.join(root, rel), text);
  }
}

describe('config discovery (cosmiconfig)', () => {
  const projectFiles = { 'integrations/shop/integration.yaml': INTEGRATION, 'integrations/shop/workflows/one.yaml': WORKFLOW };

  it.each([
    ['alloy.config.yaml', 'name: p\n'],
    ['alloy.config.json', '{"name": "p"}'],
    ['alloy.config.mjs', 'export default { name: "p" };\n'],
    ['.alloyrc', 'name: p\n'],
    ['.alloyrc.json', '{"name": "p"}'],
    ['package.json', '{"name": "x", "alloy": {"name": "p"}}'],
  ])('finds %s from a subfolder', async (file, text) => {
    await writeTree(dir, { [file]: text, ...projectFiles });
    const r = await runInProcess(['inspect', '--json'], { cwd: path.join(dir, 'integrations', 'shop', 'workflows') });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.stdout) as { name: string; integrations: { name: string; workflows: { name: string }[] }[] };
    expect(summary.name).toBe('p');
    expect(summary.integrations[0].workflows[0].name).toBe('one');
  });

  it('-C points at another folder', async () => {
    await writeTree(dir, { 'alloy.config.yaml': 'name: p\n', ...projectFiles });
    const r = await runInProcess(['-C', dir, 'validate', '--json'], { cwd: '/' });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([]);
  });

  it('config problems are located diagnostics, in package.json#alloy too', async () => {
    await writeTree(dir, { 'package.json': '{\n  "name": "x",\n  "alloy": {\n    "name": "p",\n    "stor": {}\n  }\n}\n', ...projectFiles });
    const r = await runInProcess(['validate', '--json'], { cwd: dir });
    expect(r.code).toBe(2);
    const [d] = JSON.parse(r.stdout) as { file: string; line: number; column: number; code: string; hint: string }[];
    expect(d).toMatchObject({ file: 'package.json', line: 5, column: 5, code: 'E_SCHEMA_UNKNOWN_KEY', hint: 'did you mean "store"?' });
  });

  it('a broken YAML config is reported at its position, not thrown', async () => {
    await writeTree(dir, { 'alloy.config.yaml': 'name: p\nstore: [unclosed\n', ...projectFiles });
    const r = await runInProcess(['validate', '--json'], { cwd: dir });
    expect(r.code).toBe(2);
    const list = JSON.parse(r.stdout) as { file: string; code: string; line: number }[];
    expect(list[0]).toMatchObject({ file: 'alloy.config.yaml', code: 'E_YAML_SYNTAX' });
  });

  it('--fail-on-warn turns warnings into exit 2', async () => {
    await writeTree(dir, { 'alloy.config.yaml': 'name: p\n', 'integrations/shop/integration.yaml': INTEGRATION, 'integrations/shop/workflows/other-file.yaml': WORKFLOW });
    const relaxed = await runInProcess(['validate', '--json'], { cwd: dir });
    expect(relaxed.code).toBe(0);
    expect((JSON.parse(relaxed.stdout) as { code: string }[])[0].code).toBe('W_WORKFLOW_NAME');
    const strict = await runInProcess(['validate', '--fail-on-warn'], { cwd: dir });
    expect(strict.code).toBe(2);
    // every flag is also read from ALLOY_<COMMAND>_<FLAG>; the old ALLOY_<FLAG> still works, with a note
    const fromEnv = await runInProcess(['validate'], { cwd: dir, env: { ALLOY_VALIDATE_FAIL_ON_WARN: '1' } });
    expect(fromEnv.code).toBe(2);
    const legacy = await runInProcess(['validate'], { cwd: dir, env: { ALLOY_FAIL_ON_WARN: '1' } });
    expect(legacy.code).toBe(2);
    expect(legacy.stderr).toContain('ALLOY_FAIL_ON_WARN is deprecated; use ALLOY_VALIDATE_FAIL_ON_WARN');
  });
});

describe('unreadable definition files', () => {
  it('a folder named like a workflow file is a located diagnostic, not a crash', async () => {
    await writeTree(dir, { 'alloy.config.yaml': 'name: p\n', 'integrations/shop/integration.yaml': INTEGRATION, 'integrations/shop/workflows/one.yaml': WORKFLOW });
    await mkdir(path.join(dir, 'integrations/shop/workflows/dir.yaml'));
    const r = await runInProcess(['validate', '--json'], { cwd: dir });
    expect(r.code).toBe(2);
    const list = JSON.parse(r.stdout) as { file: string; code: string }[];
    expect(list).toEqual([expect.objectContaining({ file: 'integrations/shop/workflows/dir.yaml', code: 'E_FILE_READ' })]);
  });

  // root reads anything, so this can only be checked as another user.
  it.skipIf(process.getuid?.() === 0)('a file without read permission is a diagnostic', async () => {
    const { chmod } = await import('node:fs/promises');
    await writeTree(dir, { 'alloy.config.yaml': 'name: p\n', 'integrations/shop/integration.yaml': INTEGRATION, 'integrations/shop/workflows/one.yaml': WORKFLOW });
    await chmod(path.join(dir, 'integrations/shop/workflows/one.yaml'), 0o000);
    const r = await runInProcess(['validate', '--json'], { cwd: dir });
    expect((JSON.parse(r.stdout) as { code: string }[])[0].code).toBe('E_FILE_READ');
  });
});
