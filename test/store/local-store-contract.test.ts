import { writeFile } from 'node:fs/promises';
import { afterAll } from 'vitest';
import { LocalStore } from '../../src/store/index.js';
import { cleanupTempDirs, tempDir } from './helpers.js';
import { runStoreContract } from './store-contract.js';

afterAll(cleanupTempDirs);

runStoreContract('local', async () => {
  const store = new LocalStore(await tempDir());
  await store.init();
  return { store, corrupt: (id) => writeFile(store.objectPath(id), '{"type":"workflow","def":{}}'), close: () => store.close() };
});
