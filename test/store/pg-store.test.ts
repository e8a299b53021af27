/** The Store contract on PostgreSQL (PgStore over a serve state's pool, each test in its own schema). */
import { afterAll, beforeAll } from 'vitest';
import { openPgState } from '../../src/serve/state/pg-state.js';
import { PgStore } from '../../src/store/pg-store.js';
import { assertPgReachable, describePg, dropSchemas, freshSchema, PG_URL } from '../helpers/pg.js';
import { fixedClock } from './helpers.js';
import { runStoreContract } from './store-contract.js';

describePg('PgStore', () => {
  beforeAll(() => assertPgReachable());
  afterAll(() => dropSchemas());

  runStoreContract('postgres', async () => {
    const state = await openPgState({ url: PG_URL, schema: freshSchema('store'), poolSize: 8 });
    const store = new PgStore(state.pool, 'postgres test', { now: fixedClock() });
    return {
      store,
      corrupt: async (id) => void (await state.pool.query("UPDATE store_objects SET bytes = convert_to('{\"type\":\"workflow\",\"def\":{}}', 'UTF8') WHERE id = $1", [id])),
      close: () => state.close(),
    };
  });
});
