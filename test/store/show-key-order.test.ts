/**
 * `alloy show` prints a released definition in the file's key order (issue 10): objects are
 * canonical JSON (sorted keys), so the release records the source order beside the ids.
 * Reordering keys alone is no change (status/release say up to date); releases without the
 * recorded order still print in the conventional order.
 */
import path from 'node:path';
import { writeFile } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanupTempDirs, cli, integration, tempDir, workflow, writeProject } from './helpers.js';
import { applyKeyOrder, keyOrderOf } from '../../src/store/key-order.js';

afterEach(cleanupTempDirs);

const WORKFLOW = `name: ordered
kind: Workflow
apiVersion: alloy/v1
steps:
  - uses: transform
    id: map
    with:
      zeta: "{{ event.z }}"
      alpha: "{{ event.a }}"
      a/b: 1
trigger:
  schema: { type: object }
  event: acme.ordered
`;

describe('alloy show key order', () => {
  it('prints the workflow and integration as the files order their keys', async () => {
    const root = await tempDir();
    await writeProject(root, [integration('shop', [workflow('ordered')])]);
    const file = path.join(root, 'integrations/shop/workflows/ordered.yaml');
    await writeFile(file, WORKFLOW);
    await writeFile(path.join(root, 'integrations/shop/integration.yaml'), 'name: shop\napp: shopify\nkind: Integration\napiVersion: alloy/v1\n');
    expect((await cli(root, ['release', '-m', 'one'])).code).toBe(0);

    const show = await cli(root, ['show', 'shop@1', 'ordered']);
    expect(show.code).toBe(0);
    const body = show.stdout.split('\n').filter((l) => !l.startsWith('#')).join('\n').trimEnd();
    expect(body).toBe(
      [
        'name: ordered',
        'kind: Workflow',
        'apiVersion: alloy/v1',
        'steps:',
        '  - uses: transform',
        '    id: map',
        '    with:',
        '      zeta: "{{ event.z }}"',
        '      alpha: "{{ event.a }}"',
        '      a/b: 1',
        'trigger:',
        '  schema:',
        '    type: object',
        '  event: acme.ordered',
      ].join('\n'),
    );
    const all = await cli(root, ['show', 'shop@1']);
    expect(all.stdout).toContain('# ');
    expect(all.stdout).toMatch(/integration\.yaml\nname: shop\napp: shopify\nkind: Integration\napiVersion: alloy\/v1\n/);

    // Only the keys move: the content ids are the same, so nothing new to release.
    await writeFile(file, WORKFLOW.replace('name: ordered\nkind: Workflow\n', 'kind: Workflow\nname: ordered\n'));
    const again = await cli(root, ['release', '--json']);
    expect(again.json().releases[0].status).toBe('up-to-date');
    expect((await cli(root, ['fsck'])).code).toBe(0);
  });

  it('without a recorded order, falls back to the conventional order', () => {
    const def = { trigger: { event: 'x' }, steps: [{ with: { b: 1, a: 2 }, uses: 'transform', id: 's' }], name: 'n', kind: 'Workflow', apiVersion: 'alloy/v1' };
    const conventional = (at: string, keys: string[]) => (at === '' ? ['apiVersion', 'kind', 'name', 'trigger', 'steps'].filter((k) => keys.includes(k)) : keys.sort());
    expect(Object.keys(applyKeyOrder(def, undefined, conventional) as object)).toEqual(['apiVersion', 'kind', 'name', 'trigger', 'steps']);
    expect(keyOrderOf(def).slice(0, 5)).toEqual(['/trigger', '/steps', '/name', '/kind', '/apiVersion']);
    expect(Object.keys((applyKeyOrder(def, keyOrderOf(def), conventional) as { steps: object[] }).steps[0])).toEqual(['with', 'uses', 'id']);
  });
});
