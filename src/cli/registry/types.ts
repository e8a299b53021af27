/**
 * Command specs. Every command is registered in the list in ./index.ts (cf. wrangler's src/cli.ts),
 * gathered from one file per area so each area owns its entries. A spec declares
 * the command's arguments and flags only; `load` imports the handler lazily so that
 * `alloy --version` and `alloy --help` load none of ajv, jsonata, sqlite or inquirer.
 *
 * Handlers live in src/cli/commands/<name>.ts and export
 *   `default async function (ctx: CliContext, args: string[], opts: Record<string, any>): Promise<number | void>`
 * returning an exit code (default 0) or throwing an AlloyError.
 */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';

export type CommandHandler = (
  ctx: CliContext,
  args: string[],
  opts: Record<string, any>,
) => Promise<number | void>;

export interface CommandSpec {
  /** Commander usage, e.g. `validate [paths...]`. */
  usage: string;
  summary: string;
  /**
   * Prefix of the environment variables for this command's flags (default `ALLOY_<COMMAND>`,
   * e.g. ALLOY_RELEASE_MESSAGE): one variable never moves two commands. An option that calls
   * `.env()` itself keeps its own (the shared ALLOY_STORE, ALLOY_REMOTE). Commands that set
   * it have no deprecated `ALLOY_<FLAG>` names.
   */
  envPrefix?: string;
  /**
   * Deprecated variable names of flags (`--tunnel-url` → `ALLOY_RELAY_URL`), read when the new one
   * is unset; `null`: none (a flag added after the scheme never had `ALLOY_<FLAG>`).
   */
  legacyEnv?: Record<string, string | null>;
  /** Adds flags; --json, -C/--cwd, -v and --no-color are global. */
  options?: (cmd: Command) => void;
  /** Extra text after the options in `alloy <cmd> --help`. */
  examples?: string[];
  load: () => Promise<{ default: CommandHandler }>;
}

