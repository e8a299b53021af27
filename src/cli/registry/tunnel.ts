import type { CommandSpec } from './types.js';

export const tunnelCommands: CommandSpec[] = [];
