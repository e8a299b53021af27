/**
 * The ready context every command handler gets (cf. wrangler): resolved working directory,
 * output channels that know about --json, colours and TTYs, a spinner that only spins on a
 * TTY, and the environment. Handlers never touch process.* directly, so tests can run the
 * CLI in-process with captured streams.
 */
import { Chalk, type ChalkInstance } from 'chalk';
import { terminalSafe } from './render/terminal-safe.js';

export interface Writable {
  write(chunk: string): unknown;
  isTTY?: boolean;
}

export interface Spinner {
  update(text: string): void;
  succeed(text?: string): void;
  fail(text?: string): void;
  stop(): void;
}

export interface CliIO {
  stdout: Writable;
  stderr: Writable;
  stdin?: NodeJS.ReadableStream & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
  cwd: string;
}

export interface CliContext {
  /** Directory commands work in (`-C/--cwd`, else the process's). */
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** --json: stdout carries only JSON. */
  json: boolean;
  verbose: boolean;
  /** Colours for stdout / stderr; plain when NO_COLOR, --no-color, or not a TTY. */
  color: ChalkInstance;
  errColor: ChalkInstance;
  /** Standard output: results. */
  out(line?: string): void;
  /** Standard error: progress and human notes (kept off stdout so pipes stay clean). */
  note(line?: string): void;
  /** Print a value as JSON on stdout (the only thing a --json command prints there). */
  printJson(value: unknown): void;
  /** May we ask questions? Only on a TTY and never under CI=true. */
  interactive: boolean;
  spinner(text: string): Promise<Spinner>;
  io: CliIO;
  now(): Date;
}

export function isCI(env: NodeJS.ProcessEnv): boolean {
  const ci = env.CI;
  return ci !== undefined && ci !== '' && ci !== '0' && ci.toLowerCase() !== 'false';
}

/** Chalk level for a stream: off for NO_COLOR (https://no-color.org), FORCE_COLOR wins, else TTY. */
export function colorLevel(stream: Writable, env: NodeJS.ProcessEnv, noColorFlag = false): 0 | 1 | 2 | 3 {
  if (noColorFlag) return 0;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return 0;
  if (env.FORCE_COLOR !== undefined) {
    const n = Number(env.FORCE_COLOR);
    if (env.FORCE_COLOR === 'false' || n === 0) return 0;
    return (Number.isFinite(n) ? Math.min(3, Math.max(1, n)) : 1) as 1 | 2 | 3;
  }
  if (!stream.isTTY) return 0;
  if (env.TERM === 'dumb') return 0;
  return 1;
}

export interface ContextOptions {
  json?: boolean;
  verbose?: boolean;
  noColor?: boolean;
  cwd?: string;
  now?: () => Date;
}

export function createContext(io: CliIO, options: ContextOptions = {}): CliContext {
  const json = options.json ?? false;
  const stdoutTTY = Boolean(io.stdout.isTTY);
  const stderrTTY = Boolean(io.stderr.isTTY);
  const ci = isCI(io.env);
  const color = new Chalk({ level: colorLevel(io.stdout, io.env, options.noColor) });
  const errColor = new Chalk({ level: colorLevel(io.stderr, io.env, options.noColor) });
  const ctx: CliContext = {
    cwd: options.cwd ?? io.cwd,
    env: io.env,
    json,
    verbose: options.verbose ?? false,
    color,
    errColor,
    out: (line = '') => {
      io.stdout.write(`${terminalSafe(line)}\n`);
    },
    note: (line = '') => {
      io.stderr.write(`${terminalSafe(line)}\n`);
    },
    printJson: (value) => {
      io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
    },
    interactive: Boolean(io.stdin?.isTTY) && stdoutTTY && !ci,
    spinner: async (text) => {
      // ora only on a sized TTY, never in CI or --json; otherwise progress is silent. (A pty
      // that reports 0 columns makes ora's line arithmetic erase without end.)
      const columns = (io.stderr as { columns?: number }).columns ?? 0;
      if (!stderrTTY || ci || json || columns <= 0) return silentSpinner(ctx, text);
      const { default: ora } = await import('ora');
      // ora writes to the terminal itself: its texts are made safe as every human line is.
      const safe = (t: string | undefined) => (t === undefined ? t : terminalSafe(t));
      const s = ora({ text: terminalSafe(text), stream: io.stderr as NodeJS.WritableStream }).start();
      return {
        update: (t) => {
          s.text = terminalSafe(t);
        },
        succeed: (t) => void s.succeed(safe(t)),
        fail: (t) => void s.fail(safe(t)),
        stop: () => void s.stop(),
      };
    },
    io,
    now: options.now ?? (() => new Date()),
  };
  return ctx;
}

function silentSpinner(ctx: CliContext, _text: string): Spinner {
  return {
    update: () => {},
    succeed: (t) => {
      if (t && !ctx.json) ctx.note(t);
    },
    fail: (t) => {
      if (t && !ctx.json) ctx.note(t);
    },
    stop: () => {},
  };
}
