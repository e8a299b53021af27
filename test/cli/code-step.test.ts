/**
 * The `code:` step through the CLI in-process: `alloy validate` locates a JavaScript syntax
 * error at its line:col in the YAML; `alloy run` returns the code's JSON, shows its
 * console.log lines in the step trace, and names the line of a runtime error.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runInProcess, tempDir } from '../helpers/cli.js';

let dir: string;
let cleanup: () => Promise<void>;

beforeEach(async () => {
  ({ dir, cleanup } = await tempDir('alloy-code-'));
  await writeFile(path.join(dir, 'alloy.config.yaml'), 'apiVersion: alloy/v1\nkind: Project\nname: code-test\n');
  await mkdir(path.join(dir, 'integrations', 'acme', 'workflows'), { recursive: true });
  await writeFile(path.join(dir, 'integrations', 'acme', 'integration.yaml'), 'apiVersion: alloy/v1\nkind: Integration\nname: acme\napp: http\n');
});
afterEach(() => cleanup());

async function workflow(steps: string) {
  const text = `apiVersion: alloy/v1
kind: Workflow
name: mapper
trigger:
  event: acme.thing
steps:
${steps}`;
  await writeFile(path.join(dir, 'integrations', 'acme', 'workflows', 'mapper.yaml'), text);
  return text;
}

describe('code step', () => {
  it('a syntax error is a validation error at its line and column in the YAML', async () => {
    const text = await workflow(`  - id: first
    uses: transform
    with: { a: 1 }
  - id: map
    code: |
      const total = event.items.length;
      return { total: total + };
`);
    const r = await runInProcess(['validate', '--json'], { cwd: dir });
    expect(r.code).toBe(2);
    const out = JSON.parse(r.stdout) as { code: string; line: number; column: number; message: string }[];
    const d = out.find((x) => x.code === 'E_CODE_SYNTAX');
    expect(d).toBeDefined();
    const lines = text.split('\n');
    const lineNo = lines.findIndex((l) => l.includes('return { total: total + }')) + 1;
    expect(d!.line).toBe(lineNo);
    // QuickJS points at the token it could not take: the closing brace.
    expect(d!.column).toBe(lines[lineNo - 1].indexOf('}') + 1);
    expect(d!.message).toMatch(/step "map": JavaScript syntax error/);
  });

  it('runs, returns JSON, and puts console.log in the step trace', async () => {
    await workflow(`  - id: first
    uses: transform
    with: { base: "{{ event.n }}" }
  - id: map
    code: |
      console.log("items", event.items.length);
      return { doubled: steps.first.output.base * 2, names: event.items.map(i => i.name.toUpperCase()) };
`);
    const r = await runInProcess(['run', 'acme/mapper', '--event', JSON.stringify({ n: 21, items: [{ name: 'a' }, { name: 'b' }] }), '--json'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const rec = (JSON.parse(r.stdout) as { execution: unknown }).execution as { status: string; steps: Record<string, { output?: unknown; logs?: string[]; kind: string }> };
    expect(rec.status).toBe('succeeded');
    expect(rec.steps.map.kind).toBe('code');
    expect(rec.steps.map.output).toEqual({ doubled: 42, names: ['A', 'B'] });
    expect(rec.steps.map.logs).toEqual(['items 2']);

    const human = await runInProcess(['run', 'acme/mapper', '--event', JSON.stringify({ n: 1, items: [] })], { cwd: dir });
    expect(human.code).toBe(0);
    expect(human.stdout + human.stderr).toContain('items 0');
  });

  it('inside each, the item and index are in scope', async () => {
    await workflow(`  - id: loop
    each: "{{ event.items }}"
    steps:
      - id: shout
        code: |
          return { i: index, name: item.name.toUpperCase(), same: vars.item === item };
`);
    const r = await runInProcess(['run', 'acme/mapper', '--event', JSON.stringify({ items: [{ name: 'a' }, { name: 'b' }] }), '--json'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const rec = (JSON.parse(r.stdout) as { execution: unknown }).execution as { steps: Record<string, { output?: unknown }> };
    expect(rec.steps['loop[1].shout'].output).toEqual({ i: 1, name: 'B', same: true });
  });

  it("the step's timeout is its time limit", async () => {
    await workflow(`  - id: spin
    timeout: 100ms
    code: |
      while (true) {}
`);
    const started = Date.now();
    const r = await runInProcess(['run', 'acme/mapper', '--event', '{}', '--json'], { cwd: dir });
    expect(r.code).toBe(1);
    const rec = (JSON.parse(r.stdout) as { execution: unknown }).execution as { error: { code: string; message: string } };
    expect(rec.error.code).toBe('E_CODE_TIMEOUT');
    expect(rec.error.message).toContain('100 ms');
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('a runtime error fails the step naming the code line', async () => {
    await workflow(`  - id: map
    code: |
      const first = event.items[0];
      return first.name;
`);
    const r = await runInProcess(['run', 'acme/mapper', '--event', '{"items":[]}', '--json'], { cwd: dir });
    expect(r.code).toBe(1);
    const rec = (JSON.parse(r.stdout) as { execution: unknown }).execution as { status: string; error: { code: string; message: string; step: string } };
    expect(rec.status).toBe('failed');
    expect(rec.error.code).toBe('E_CODE_ERROR');
    expect(rec.error.step).toBe('map');
    expect(rec.error.message).toContain('code line 2');
    expect(rec.error.message).toContain('return first.name;');
  });
});
