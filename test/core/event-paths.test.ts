/** `event.<path>` in expressions is checked against the trigger's JSON Schema: unknown properties warn, located, with did-you-mean. */
import { cp, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { REPO_ROOT, runInProcess, tempDir } from '../helpers/cli.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => {
  ({ dir, cleanup } = await tempDir('alloy-event-paths-'));
  await cp(path.join(REPO_ROOT, 'examples', 'shopify-sync'), dir, { recursive: true });
});
afterEach(async () => cleanup());

async function edit(rel: string, from: string, to: string) {
  const file = path.join(dir, 'integrations/shopify-sync/workflows', rel);
  const text = await readFile(file, 'utf8');
  expect(text).toContain(from);
  await writeFile(file, text.replace(from, to));
}

describe('event paths against the trigger schema', () => {
  it('the example reads only properties its schemas have', async () => {
    const r = await runInProcess(['validate', '--json'], { cwd: dir });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([]);
  });

  it('warns at event.emial with did-you-mean email, for a custom event schema and a Shopify payload schema', async () => {
    await edit('create-order.yaml', '"{{ event.email }}"', '"{{ event.emial }}"');
    await edit('order-created.yaml', '"{{ event.email }}"', '"{{ event.emial }}"');
    const r = await runInProcess(['validate', '--json'], { cwd: dir });
    expect(r.code).toBe(0); // warnings only
    const found = JSON.parse(r.stdout) as { code: string; severity: string; file: string; line: number; column: number; message: string; hint: string }[];
    expect(found).toHaveLength(2);
    for (const d of found) {
      expect(d).toMatchObject({ code: 'W_EVENT_UNKNOWN_PROPERTY', severity: 'warning', hint: 'did you mean "event.email"?' });
      expect(d.message).toContain('event.emial');
    }
    const create = found.find((d) => d.file.endsWith('create-order.yaml'))!;
    const lines = (await readFile(path.join(dir, 'integrations/shopify-sync/workflows/create-order.yaml'), 'utf8')).split('\n');
    // Located at the misspelt name inside the expression.
    expect(lines[create.line - 1].slice(create.column - 1, create.column - 1 + 5)).toBe('emial');
    const strict = await runInProcess(['validate', '--fail-on-warn'], { cwd: dir });
    expect(strict.code).toBe(2);
  });

  it('follows nested objects and arrays (JSONata maps over line items)', async () => {
    await edit('create-order.yaml', '"{{ event.phone }}"', '"{{ $string($count(event.lineItems.qantity)) }}"');
    const r = await runInProcess(['validate', '--json'], { cwd: dir });
    const found = JSON.parse(r.stdout) as { code: string; message: string; hint: string }[];
    expect(found.map((d) => d.code)).toEqual(['W_EVENT_UNKNOWN_PROPERTY']);
    expect(found[0].message).toContain('event.lineItems.qantity');
    expect(found[0].hint).toBe('did you mean "event.lineItems.quantity"?');
  });
});
