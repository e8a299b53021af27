import type { CommandSpec } from './types.js';

export const engineCommands: CommandSpec[] = [];
