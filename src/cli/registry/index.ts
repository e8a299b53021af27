/** Every command alloy has, in the order `alloy --help` lists them. */
import type { CommandSpec } from './types.js';
import { foundationCommands } from './foundation.js';
import { engineCommands } from './engine.js';
import { storeCommands } from './store.js';
import { runtimeCommands } from './runtime.js';
import { tunnelCommands } from './tunnel.js';
import { serveCommands } from './serve.js';
import { testingCommands } from './testing.js';

export type { CommandSpec, CommandHandler } from './types.js';

export const commands: CommandSpec[] = [
  ...foundationCommands,
  ...engineCommands,
  ...testingCommands,
  ...storeCommands,
  ...runtimeCommands,
  ...tunnelCommands,
  ...serveCommands,
];
