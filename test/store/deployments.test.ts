/** `alloy deployments` (the publish log) and `alloy rollback [--to] [--yes]` with accurate errors and a TTY confirmation. */
import { afterEach, describe, expect, it } from 'vitest';
import { cleanupTempDirs, cli, integration, tempDir, workflow, writeProject, writeWorkflow } from './helpers.js';
import { BIN } from '../helpers/cli.js';
import { hasScript, inPty } from '../helpers/pty.js';

afterEach(cleanupTempDirs);

/** A project with shop v1, v2, v3 released. */
async function threeVersions() {
  const root = await tempDir();
  await writeProject(root, [integration('shop', [workflow('a')])]);
  expect((await cli(root, ['release', '-m', 'one'])).code).toBe(0);
  for (const [i, ev] of ['acme.two', 'acme.three'].entries()) {
    await writeWorkflow(root, 'shop', workflow('a', undefined, { event: ev }));
    expect((await cli(root, ['release', '-m', `v${i + 2}`])).code).toBe(0);
  }
  return root;
}

describe('alloy deployments and rollback', () => {
  it('rollback with nothing published, or nothing before, says so with E_ROLLBACK_NOTHING', async () => {
    const root = await threeVersions();
    const none = await cli(root, ['rollback', 'shop']);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('E_ROLLBACK_NOTHING');
    expect(none.stderr).toContain('has no published version');
    expect((await cli(root, ['publish', 'shop@1'])).code).toBe(0);
    const first = await cli(root, ['rollback', 'shop', '--json']);
    expect(first.code).toBe(1);
    expect(first.json().error.code).toBe('E_ROLLBACK_NOTHING');
    const same = await cli(root, ['rollback', 'shop', '--to', '1']);
    expect(same.code).toBe(1);
    expect(same.stderr).toContain('already the published version');
  });

  it('lists every move (when, who, from → to, message), and rollback --to goes where asked', async () => {
    const root = await threeVersions();
    expect((await cli(root, ['publish', 'shop@1', '-m', 'go live'])).code).toBe(0);
    expect((await cli(root, ['publish', 'shop@3', '-m', 'new mapping'])).code).toBe(0);
    // Not a TTY: no question, it goes ahead.
    const back = await cli(root, ['rollback', 'shop', '-m', 'v3 breaks refunds']);
    expect(back.code, back.stderr).toBe(0);
    expect(back.stdout).toContain('rolled back shop to v1');
    const to = await cli(root, ['rollback', 'shop', '--to', '2', '--yes']);
    expect(to.code, to.stderr).toBe(0);
    expect(to.stdout).toContain('rolled back shop to v2');
    const list = await cli(root, ['deployments', 'shop']);
    expect(list.code).toBe(0);
    const lines = list.stdout.trim().split('\n');
    expect(lines[0]).toBe('shop');
    expect(lines[1]).toMatch(/^ {2}\d{4}-\d\d-\d\dT\S+Z {2}publish\s+\(none\) → v1\s+Test Author <test@example.com> {2}go live$/);
    expect(lines[2]).toMatch(/publish\s+v1 → v3\s+Test Author <test@example\.com> {2}new mapping$/);
    expect(lines[3]).toMatch(/rollback\s+v3 → v1\s+Test Author <test@example\.com> {2}v3 breaks refunds$/);
    expect(lines[4]).toMatch(/rollback\s+v1 → v2/);
    const json = await cli(root, ['deployments', '--json']);
    const shop = json.json().integrations.find((i: { integration: string }) => i.integration === 'shop');
    expect(shop.published).toBe(2);
    expect(shop.deployments.map((d: { action: string; to: { version: number } }) => `${d.action}:${d.to.version}`)).toEqual(['publish:1', 'publish:3', 'rollback:1', 'rollback:2']);
    expect(shop.deployments[0]).toMatchObject({ who: 'Test Author <test@example.com>', message: 'go live', from: null });
  });

  it.skipIf(!hasScript)('asks on a TTY; answering no changes nothing', async () => {
    const root = await threeVersions();
    expect((await cli(root, ['publish', 'shop@1'])).code).toBe(0);
    expect((await cli(root, ['publish', 'shop@2'])).code).toBe(0);
    const { child, output, seen } = inPty(`node ${BIN} rollback shop`, root, { ALLOY_AUTHOR: 'T <t@example.com>' });
    await seen('Roll shop back from v2 to v1');
    child.stdin!.write('n\r');
    const r = await child;
    expect(r.exitCode).toBe(1);
    expect(output()).toContain('cancelled: nothing changed');
    const list = await cli(root, ['deployments', 'shop', '--json']);
    expect(list.json().integrations[0].published).toBe(2);
  });
});
