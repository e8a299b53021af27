/**
 * The one place errors become output and exit codes. User errors (AlloyError) print their
 * message and hint without a stack trace; anything else is an internal error that asks to
 * be reported. ALLOY_DEBUG=1 shows stacks for both.
 */
import path from 'node:path';
import { FS_ERRNOS } from '../core/fs-errors.js';
import type { CliContext } from './context.js';
import { AlloyError, EXIT_FAILURE } from '../errors.js';

/** 128 + SIGINT, as shells report an interrupted program. */
export const EXIT_CANCELLED = 130;

export const REPORT_URL = 'https://github.com/alloy-integrations/alloy/issues';

function fileSystemError(err: unknown, cwd: string): AlloyError | undefined {
  const e = err as NodeJS.ErrnoException | undefined;
  if (!e || typeof e !== 'object' || typeof e.code !== 'string' || typeof e.syscall !== 'string' || typeof e.path !== 'string') return undefined;
  const known = FS_ERRNOS[e.code];
  if (!known) return undefined;
  const shown = path.relative(cwd, e.path) || '.';
  return new AlloyError('E_FS', `cannot ${e.syscall} ${shown.startsWith('..') ? e.path : shown}: ${known.words} (${e.code})`, { hint: known.hint, cause: err, details: { errno: e.code, syscall: e.syscall, path: e.path } });
}

export function handleError(err: unknown, ctx: CliContext): number {
  const debug = Boolean(ctx.env.ALLOY_DEBUG && ctx.env.ALLOY_DEBUG !== '0');
  if (err instanceof AlloyError) {
    if (ctx.json) ctx.printJson({ ok: false, error: err.toJSON() });
    else {
      const c = ctx.errColor;
      ctx.note(`${c.red('error')} ${c.dim(err.code)} ${err.message}`);
      if (err.hint) ctx.note(`${c.cyan('hint')}  ${err.hint}`);
      if (debug && err.stack) ctx.note(c.dim(err.stack));
      if (debug && err.cause instanceof Error && err.cause.stack) ctx.note(c.dim(`caused by: ${err.cause.stack}`));
    }
    return err.exitCode;
  }
  // Ctrl-C at a prompt (@inquirer/prompts' ExitPromptError): the user's choice, not a bug.
  if (err instanceof Error && (err.name === 'ExitPromptError' || err.name === 'AbortPromptError')) {
    if (ctx.json) ctx.printJson({ ok: false, error: { code: 'E_CANCELLED', message: 'cancelled' } });
    else ctx.note('cancelled');
    return EXIT_CANCELLED;
  }
  const fs = fileSystemError(err, ctx.cwd);
  if (fs) return handleError(fs, ctx);
  const e = err instanceof Error ? err : new Error(String(err));
  if (ctx.json) {
    ctx.printJson({ ok: false, error: { code: 'E_INTERNAL', message: e.message } });
  } else {
    ctx.note(`${ctx.errColor.red('internal error')} ${e.message}`);
    ctx.note(debug ? String(e.stack) : `This is a bug in alloy. Re-run with ALLOY_DEBUG=1 for details and report it at ${REPORT_URL}`);
  }
  return EXIT_FAILURE;
}
