/**
 * The commander program. `runCli` never calls process.exit: it returns the exit code, and
 * bin/alloy.js exits with it (the one place the process ends). Errors become messages and
 * codes in handle-errors.ts.
 */
import { Command, CommanderError, Option } from 'commander';
import type { CliIO } from './context.js';
import { commands, type CommandSpec } from './registry/index.js';
import { VERSION } from '../version.js';

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
    })
    .exitOverride();

  for (const spec of commands) addCommand(program, spec, io, (code) => (exitCode = code));

  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here with exit code 0; usage mistakes with 2.
      if (err.exitCode === 0) return 0;
      return 2;
    }
    const opts = program.opts<GlobalOptions>();
    const [{ createContext }, { handleError }] = await Promise.all([import('./context.js'), import('./handle-errors.js')]);
    return handleError(err, createContext(io, { json: opts.json, noColor: opts.color === false }));
  }
  return exitCode;
}

/**
 * Fills options not given on the command line from ALLOY_* variables of the injected
 * environment (commander itself only reads process.env, which in-process callers do not
 * control). Flags win; `0`, `false` and the empty string turn a boolean flag off.
 */
function applyEnvironment(command: Command, env: NodeJS.ProcessEnv): void {
  for (const cmd of [command, command.parent].filter((c): c is Command => Boolean(c))) {
    for (const option of cmd.options) {
      const raw = option.envVar ? env[option.envVar] : undefined;
      const key = option.attributeName();
      if (raw === undefined || cmd.getOptionValueSource(key) === 'cli') continue;
      const value = option.isBoolean() ? !['0', 'false', ''].includes(raw.toLowerCase()) : raw;
      cmd.setOptionValueWithSource(key, value, 'env');
    }
  }
}

function addCommand(program: Command, spec: CommandSpec, io: CliIO, setExit: (code: number) => void): void {
  const cmd = program.command(spec.usage).description(spec.summary);
  spec.options?.(cmd);
  // Every flag is also readable from <prefix>_<FLAG> (flags win over the environment).
  const prefix = spec.envPrefix ?? 'ALLOY';
  for (const option of cmd.options) {
    if (option.envVar || !option.long || option.negate) continue;
    option.env(`${prefix}_${option.long.replace(/^--/, '').replace(/-/g, '_').toUpperCase()}`);
  }
  if (spec.examples?.length) {
    cmd.addHelpText('after', `\nExamples:\n${spec.examples.map((e) => `  $ ${e}`).join('\n')}\n`);
  }
  cmd.action(async (...actionArgs: unknown[]) => {
    // commander passes (...positionals, options, command)
    const command = actionArgs[actionArgs.length - 1] as Command;
    applyEnvironment(command, io.env);
    const opts = command.optsWithGlobals<GlobalOptions & Record<string, unknown>>();
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

