/**
 * The commander program. `runCli` never calls process.exit: it returns the exit code, and
 * bin/alloy.js exits with it (the one place the process ends). Errors become messages and
 * codes in handle-errors.ts.
 */
import { Command, CommanderError, Option } from 'commander';
import type { CliIO } from './context.js';
import { commands, type CommandSpec } from './registry/index.js';
import { VERSION } from '../version.js';

/** Columns help text is laid out for. */
const HELP_WIDTH = 80;

interface GlobalOptions {
  json?: boolean;
  cwd?: string;
  verbose?: boolean;
  color?: boolean;
}

export async function runCli(argv: string[], io: CliIO): Promise<number> {
  let exitCode = 0;
  // -V/--version before any command prints alloy's version. After a command it is that
  // command's own flag (`alloy replay <id> --version 3`), which commander's .version() on
  // the root would swallow wherever it appears, so the root flag is handled here.
  const firstOperand = argv.findIndex((a, i) => !a.startsWith('-') && argv[i - 1] !== '-C' && argv[i - 1] !== '--cwd');
  const versionAt = argv.findIndex((a) => a === '-V' || a === '--version');
  if (versionAt >= 0 && (firstOperand < 0 || versionAt < firstOperand)) {
    io.stdout.write(`${VERSION}\n`);
    return 0;
  }
  const program = new Command('alloy');
  program
    .description('Embedded integrations as code: validate, run, release and serve workflows.')
    .addHelpText('after', '\nalloy -V, --version prints the version.')
    .addOption(new Option('-C, --cwd <dir>', 'run as if started in <dir>').env('ALLOY_CWD'))
    .addOption(new Option('--json', 'print machine-readable JSON on stdout').env('ALLOY_JSON'))
    .option('-v, --verbose', 'more detail')
    .option('--no-color', 'disable colours (NO_COLOR is honoured too)')
    .showSuggestionAfterError(true)
    .showHelpAfterError('(run with --help for usage)')
    .enablePositionalOptions(false)
    .configureOutput({
      writeOut: (s) => void io.stdout.write(s),
      writeErr: (s) => void io.stderr.write(s),
      // One width everywhere (not the terminal's): the same help on every terminal, so
      // bin/alloy.js can print `alloy --help` from dist/cli/help.txt (scripts/build-help.mjs).
      getOutHelpWidth: () => HELP_WIDTH,
      getErrHelpWidth: () => HELP_WIDTH,
    })
    .exitOverride();

  for (const spec of commands) addCommand(program, spec, io, (code) => (exitCode = code));

  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here with exit code 0; usage mistakes with 2.
      if (err.exitCode === 0) return 0;
      // commander printed the message on stderr; under --json stdout still gets the one JSON error.
      if (jsonRequested(argv, io.env)) io.stdout.write(`${JSON.stringify(usageErrorJson(err.message), null, 2)}\n`);
      return 2;
    }
    const opts = program.opts<GlobalOptions>();
    const [{ createContext }, { handleError }] = await Promise.all([import('./context.js'), import('./handle-errors.js')]);
    return handleError(err, createContext(io, { json: opts.json, noColor: opts.color === false }));
  }
  return exitCode;
}

/** --json on the command line (before `--`), or ALLOY_JSON on, judged without commander (its parse failed). */
function jsonRequested(argv: string[], env: NodeJS.ProcessEnv): boolean {
  const end = argv.indexOf('--');
  if ((end === -1 ? argv : argv.slice(0, end)).includes('--json')) return true;
  const raw = env.ALLOY_JSON;
  return raw !== undefined && !['0', 'false', ''].includes(raw.toLowerCase());
}

/** commander's "error: unknown option '--x'\n(Did you mean --y?)" as alloy's JSON error. */
function usageErrorJson(text: string): { ok: false; error: { code: string; message: string; hint: string } } {
  const [first, ...rest] = text.replace(/^error:\s*/i, '').split('\n');
  const hint = rest.map((l) => l.replace(/^\((.*)\)$/, '$1').trim()).filter(Boolean).join(' ');
  return { ok: false, error: { code: 'E_USAGE', message: first.trim(), hint: hint ? `${hint} (run with --help for usage)` : 'run with --help for usage' } };
}

/**
 * The one place flags are read from the environment. Every flag of `alloy <command>` is
 * `ALLOY_<COMMAND>_<FLAG>` (`alloy release -m` is ALLOY_RELEASE_MESSAGE, `alloy dev --port`
 * ALLOY_DEV_PORT), so one variable never moves two commands. Flags many commands share keep
 * one name, set with `.env()` where they are declared: ALLOY_CWD and ALLOY_JSON (global),
 * ALLOY_STORE and ALLOY_REMOTE (store selection). README "Environment variables" lists them all.
 *
 * Options not given on the command line are filled from the injected environment (commander
 * itself only reads process.env, which in-process callers do not control). Flags win; `0`,
 * `false` and the empty string turn a boolean flag off. A deprecated name still works when
 * the new one is unset, with a note on stderr.
 */
function applyEnvironment(command: Command, env: NodeJS.ProcessEnv, stderr: CliIO['stderr']): Set<string> {
  const fromEnvironment = new Set<string>();
  for (const cmd of [command, command.parent].filter((c): c is Command => Boolean(c))) {
    for (const option of cmd.options) {
      let raw = option.envVar ? env[option.envVar] : undefined;
      const key = option.attributeName();
      if (cmd.getOptionValueSource(key) === 'cli') continue;
      const legacy = LEGACY_ENV.get(option);
      if (raw === undefined && legacy && env[legacy] !== undefined) {
        raw = env[legacy];
        stderr.write(`alloy: ${legacy} is deprecated; use ${option.envVar} (README, "Environment variables")\n`);
      }
      if (raw === undefined) continue;
      const value = option.isBoolean() ? !['0', 'false', ''].includes(raw.toLowerCase()) : raw;
      cmd.setOptionValueWithSource(key, value, 'env');
      fromEnvironment.add(key);
    }
  }
  return fromEnvironment;
}

/** Every flag's environment variable, per command (the README's table is checked against this). */
export function flagEnvironmentVariables(): { command: string; flag: string; name: string; deprecated?: string }[] {
  const program = new Command('alloy');
  program.addOption(new Option('-C, --cwd <dir>').env('ALLOY_CWD')).addOption(new Option('--json').env('ALLOY_JSON'));
  const rows: { command: string; flag: string; name: string; deprecated?: string }[] = program.options.map((o) => ({ command: '(every command)', flag: o.long!, name: o.envVar! }));
  const io = { stdout: { write: () => true }, stderr: { write: () => true }, env: {}, cwd: '.' };
  for (const spec of commands) addCommand(program, spec, io, () => {});
  for (const cmd of program.commands) {
    for (const o of cmd.options) if (o.envVar) rows.push({ command: cmd.name(), flag: o.long!, name: o.envVar, ...(LEGACY_ENV.has(o) ? { deprecated: LEGACY_ENV.get(o) } : {}) });
  }
  return rows;
}

/** Deprecated variable names still read for an option (when its own is unset). */
const LEGACY_ENV = new WeakMap<Option, string>();

/** `--fail-on-warn` → `FAIL_ON_WARN`. */
const envName = (long: string) => long.replace(/^--/, '').replace(/-/g, '_').toUpperCase();

/** The environment variable prefix of a command's flags: ALLOY_<COMMAND>. */
export function commandEnvPrefix(spec: Pick<CommandSpec, 'usage' | 'envPrefix'>): string {
  return spec.envPrefix ?? `ALLOY_${envName(spec.usage.split(' ')[0])}`;
}

function addCommand(program: Command, spec: CommandSpec, io: CliIO, setExit: (code: number) => void): void {
  const cmd = program.command(spec.usage).description(spec.summary);
  spec.options?.(cmd);
  // Every flag is also readable from ALLOY_<COMMAND>_<FLAG> (flags win over the environment).
  const prefix = commandEnvPrefix(spec);
  for (const option of cmd.options) {
    if (option.envVar || !option.long || option.negate) continue;
    const flag = envName(option.long);
    option.env(`${prefix}_${flag}`);
    // Until 0.2: the names used before one scheme (ALLOY_<FLAG> outside the servers, and a few renamed ones).
    const named = spec.legacyEnv?.[option.long];
    const legacy = named !== undefined ? (named ?? undefined) : spec.envPrefix ? undefined : `ALLOY_${flag}`;
    if (legacy) LEGACY_ENV.set(option, legacy);
  }
  if (spec.examples?.length) {
    cmd.addHelpText('after', `\nExamples:\n${spec.examples.map((e) => `  $ ${e}`).join('\n')}\n`);
  }
  cmd.action(async (...actionArgs: unknown[]) => {
    // commander passes (...positionals, options, command)
    const command = actionArgs[actionArgs.length - 1] as Command;
    const fromEnvironment = applyEnvironment(command, io.env, io.stderr);
    const opts = command.optsWithGlobals<GlobalOptions & Record<string, unknown>>();
    // Which options came from the environment, for the few that treat it like config (dev --host).
    Object.defineProperty(opts, 'fromEnvironment', { value: fromEnvironment, enumerable: false });
    const positionals = actionArgs.slice(0, -2).flatMap((a) => (Array.isArray(a) ? a : a === undefined ? [] : [a]));
    // The context (chalk) and error handling load only when a command runs, not for --help.
    const [{ resolve }, { createContext }, { handleError }] = await Promise.all([
      import('node:path'),
      import('./context.js'),
      import('./handle-errors.js'),
    ]);
    const ctx = createContext(io, {
      json: Boolean(opts.json),
      verbose: Boolean(opts.verbose),
      noColor: opts.color === false,
      cwd: opts.cwd ? resolve(io.cwd, opts.cwd) : io.cwd,
    });
    try {
      const mod = await spec.load();
      const code = await mod.default(ctx, positionals as string[], opts);
      setExit(typeof code === 'number' ? code : 0);
    } catch (err) {
      setExit(handleError(err, ctx));
    }
  });
}

