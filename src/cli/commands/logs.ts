/**
 * `alloy logs [-f] [-n N]`: one line per finished execution from the event log, oldest
 * first; `-f` keeps following the running `alloy dev` (its server-sent event stream,
 * GET /v1/stream) until interrupted. With --json, one JSON object per line.
 */
import type { CliContext } from '../context.js';
import { AlloyError, UsageError } from '../../errors.js';
import { findConfig } from '../../core/find-config.js';
import { findRuntime } from '../../server/client.js';
import { openLogReader } from '../../server/log-reader.js';
import { logLine } from '../../server/terminal-format.js';
import type { LogEntry } from '../../server/event-log.js';

export default async function logs(ctx: CliContext, _args: string[], opts: Record<string, any>): Promise<number> {
  const root = (await findConfig(ctx.cwd))?.root ?? ctx.cwd;
  const lines = opts.lines === undefined ? 50 : Number(opts.lines);
  if (!Number.isInteger(lines) || lines < 1 || lines > 1000) throw new UsageError('-n/--lines must be an integer from 1 to 1000', { hint: 'e.g. -n 100' });
  const intervalMs = 1000;
  if (opts.follow && !opts.to && !(await findRuntime(root, undefined, false))) {
    // Started before dev (two terminals opened at once): wait for it rather than fail.
    ctx.note(ctx.errColor.dim('no alloy dev is running for this project yet: waiting for it to start (Ctrl-C to stop)…'));
    if (!(await waitForRuntime(root, intervalMs))) return 0;
    ctx.note(ctx.errColor.dim('alloy dev started: following its log'));
  }
  const reader = await openLogReader(root, opts.to);
  const print = (entries: LogEntry[]) => {
    for (const e of entries) {
      if (ctx.json) ctx.io.stdout.write(`${JSON.stringify(e)}\n`);
      else ctx.out(logLine(ctx.color, e));
    }
  };
  try {
    const first = await reader.readLogs(undefined, lines);
    let last = first.last;
    print(first.entries);
    // Silence looked like a hang or a broken log to someone trying the command first.
    if (first.entries.length === 0 && !ctx.json && !opts.follow) ctx.note('no finished executions yet (start `alloy dev` and send an event: `alloy emit <event>`)');
    if (!opts.follow) return 0;
    if (reader.via !== 'api') {
      throw new AlloyError('E_DEV_NOT_RUNNING', 'logs -f follows a running `alloy dev`, and none is running for this project', {
        hint: 'start `alloy dev` first (or pass --to <url>)',
      });
    }
    // Follow the runtime's event stream (GET /v1/stream, server-sent events) from the last
    // entry printed, until SIGINT/SIGTERM (the command's one long wait) or the runtime stops.
    const stop = new AbortController();
    const onSignal = () => stop.abort();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      await reader.client!.stream(
        (m) => {
          if (m.event !== 'log') return;
          const entry = JSON.parse(m.data) as LogEntry;
          if (entry.seq <= last) return;
          last = entry.seq;
          print([entry]);
        },
        { after: last, signal: stop.signal },
      );
      if (!stop.signal.aborted) ctx.note(ctx.errColor.yellow('alloy dev stopped; no more logs'));
    } catch (err) {
      if ((err as AlloyError).code === 'E_DEV_UNREACHABLE') {
        ctx.note(ctx.errColor.yellow('alloy dev stopped; no more logs'));
        return 0;
      }
      throw err;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    return 0;
  } finally {
    reader.close();
  }
}

/** Polls for a running `alloy dev` until one answers (true) or SIGINT/SIGTERM (false). */
async function waitForRuntime(root: string, intervalMs: number): Promise<boolean> {
  let stop = false;
  let wake: () => void = () => {};
  const onSignal = () => {
    stop = true;
    wake();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    while (!stop) {
      if (await findRuntime(root, undefined, false)) return true;
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, intervalMs);
      });
    }
    return false;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
