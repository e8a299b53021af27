import type { CommandSpec } from './types.js';

export const storeCommands: CommandSpec[] = [];
