/**
 * Read access to the event log for `alloy executions`, `replay` and `logs`: through the
 * running runtime's HTTP API when one is up (it holds the SQLite file's exclusive lock),
 * else by opening `.alloy/dev.sqlite` directly for reading (SQLite is loaded only then).
 */
import { existsSync } from 'node:fs';
import { AlloyError } from '../errors.js';
import { findRuntime, type RuntimeClient } from './client.js';
import { devLogFile } from './dev-state.js';
import type { LogEntry } from './event-log.js';
import type { ExecutionSummary } from './runtime-server.js';
import type { ExecutionRecord } from '../engine/types.js';

export interface LogReader {
  /** `api` (a runtime is running) or `file` (read directly). */
  via: 'api' | 'file';
  client?: RuntimeClient;
  listExecutions(filter: { status?: string; workflow?: string; limit?: number }): Promise<ExecutionSummary[]>;
  getExecution(id: string): Promise<(ExecutionSummary & { record: ExecutionRecord }) | undefined>;
  readLogs(after?: number, limit?: number): Promise<{ entries: LogEntry[]; last: number }>;
  close(): void;
}

export async function openLogReader(root: string, to?: string): Promise<LogReader> {
  const client = await findRuntime(root, to, Boolean(to));
  if (client) {
    return {
      via: 'api',
      client,
      listExecutions: (f) => client.listExecutions(f),
      getExecution: async (id) => {
        try {
          return await client.getExecution(id);
        } catch (err) {
          if ((err as AlloyError).code === 'E_EXECUTION_NOT_FOUND') return undefined;
          throw err;
        }
      },
      readLogs: (after, limit) => client.readLogs(after, limit),
      close: () => {},
    };
  }
  const file = devLogFile(root);
  if (!existsSync(file)) {
    throw new AlloyError('E_NO_EVENT_LOG', 'this project has no event log yet', { hint: 'start `alloy dev` and send an event (`alloy emit ...`)' });
  }
  // SQLite and the server's summary code only when reading the file (a running runtime answers over HTTP).
  const [{ openEventLog }, { summarizeExecution }] = await Promise.all([import('./event-log.js'), import('./runtime-server.js')]);
  const log = openEventLog({ file, readonly: true });
  return {
    via: 'file',
    listExecutions: async (f) => log.listExecutions(f).map(summarizeExecution),
    getExecution: async (id) => {
      const row = log.getExecution(id);
      return row ? { ...summarizeExecution(row), record: row.record as unknown as ExecutionRecord } : undefined;
    },
    readLogs: async (after, limit) => {
      const entries = log.readLog(after, limit);
      return { entries, last: entries.length ? entries[entries.length - 1].seq : (after ?? 0) };
    },
    close: () => log.close(),
  };
}
