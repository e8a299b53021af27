/** DefinitionSource: published releases from a store (versions immutable, cached; the pointer read each time) and the working tree. */
import { afterAll, describe, expect, it } from 'vitest';
import { LocalStore } from '../../src/store/lib.js';
import { storeDefinitionSource, workingTreeDefinitionSource } from '../../src/serve/definitions.js';
import { indexDefinitions } from '../../src/server/definitions.js';
import { cleanup, exampleSource, releaseAndPublish, tempDir } from './helpers.js';

afterAll(cleanup);

describe('DefinitionSource', () => {
  it('reads published versions from a store and indexes each version by trigger', async () => {
    const store = new LocalStore(tempDir());
    await store.init();
    const source = storeDefinitionSource(store);
    expect(await source.published('shopify-sync')).toBeUndefined();
    await releaseAndPublish(store, exampleSource());
    expect(await source.published('shopify-sync')).toBe(1);
    const v1 = await source.get('shopify-sync', 1);
    expect(v1.version).toBe(1);
    expect(v1.defs.byEvent.get('acme.order.requested')?.map((r) => r.key)).toEqual(['shopify-sync/create-order']);
    expect(v1.defs.byAppEvent.get('shopify:orders/create')?.map((r) => r.key)).toEqual(['shopify-sync/order-created']);
    await releaseAndPublish(store, exampleSource((d) => (d.description = 'v2')));
    expect(await source.published('shopify-sync')).toBe(2);
    expect(await source.get('shopify-sync', 1)).toBe(v1); // immutable: cached
    expect((await source.get('shopify-sync', 2)).def.description).toBe('v2');
    await expect(source.get('shopify-sync', 7)).rejects.toMatchObject({ code: 'E_STORE_NOT_FOUND' });
  });

  it('serves the working tree as version 0', async () => {
    const src = exampleSource();
    const project = {
      root: '/x',
      config: { apiVersion: 'alloy/v1', kind: 'Project', name: 'p' },
      integrations: [{ name: src.name, dir: '', file: '', def: src.def, workflows: src.workflows.map((w) => ({ integration: src.name, name: w.name, file: '', def: w.def })) }],
      connectors: [],
      files: [],
      diagnostics: [],
    } as unknown as Parameters<typeof indexDefinitions>[0];
    const source = workingTreeDefinitionSource(() => project);
    expect(await source.published('shopify-sync')).toBe(0);
    expect((await source.get('shopify-sync', 0)).defs.workflows.size).toBe(src.workflows.length);
    await expect(source.get('nope', 0)).rejects.toMatchObject({ code: 'E_STORE_NOT_FOUND' });
  });
});
