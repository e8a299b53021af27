import type { CommandSpec } from './types.js';

export const runtimeCommands: CommandSpec[] = [];
