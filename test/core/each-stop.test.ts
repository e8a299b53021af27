/** `each.stop` is checked before each item: it reads the item (its `as`) and the index. */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runInProcess, tempDir } from '../helpers/cli.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir()));
afterEach(async () => cleanup());

const workflow = (stop: string, as?: string) => `apiVersion: alloy/v1
kind: Workflow
name: loop
trigger: { event: acme.items }
steps:
  - id: each_line
    each: "{{ event.lines }}"
${as ? `    as: ${as}\n` : ''}    stop: "${stop}"
    steps:
      - id: echo
        uses: transform
        with: { qty: "{{ ${as ?? 'item'}.qty }}" }
`;

async function project(wf: string) {
  const files: Record<string, string> = {
    'alloy.config.yaml': 'name: p\n',
    'integrations/shop/integration.yaml': 'apiVersion: alloy/v1\nkind: Integration\nname: shop\napp: shopify\n',
    'integrations/shop/workflows/loop.yaml': wf,
  };
  for (const [rel, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await writeFile(path.join(dir, rel), text);
  }
}

describe('each.stop', () => {
  it('validates when it reads the loop item and index, and the run stops there', async () => {
    await project(workflow('{{ item.qty > 2 or index >= 5 }}'));
    const v = await runInProcess(['validate'], { cwd: dir });
    expect(v.stderr).not.toContain('E_EXPRESSION_UNKNOWN_NAME');
    expect(v.code).toBe(0);
    const r = await runInProcess(['run', 'shop/loop', '--event', '{"lines":[{"qty":1},{"qty":2},{"qty":3},{"qty":1}]}', '--json'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const rec = JSON.parse(r.stdout);
    const loop = rec.execution.steps.each_line;
    expect(loop.inputs).toMatchObject({ ran: 2, stopped: true });
  });

  it('uses the `as` name, and still reports a misspelt one', async () => {
    await project(workflow('{{ line.qty > 2 }}', 'line'));
    expect((await runInProcess(['validate'], { cwd: dir })).code).toBe(0);
    await project(workflow('{{ itme.qty > 2 }}'));
    const bad = await runInProcess(['validate'], { cwd: dir });
    expect(bad.code).toBe(2);
    expect(bad.stdout + bad.stderr).toContain('E_EXPRESSION_UNKNOWN_NAME');
  });
});
