import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openSqliteState } from '../../src/serve/state/sqlite-state.js';
import { runStateContract } from './state-contract.js';

runStateContract('sqlite', async () => openSqliteState(path.join(mkdtempSync(path.join(tmpdir(), 'alloy-state-')), 'serve.db')));
