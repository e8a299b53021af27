/**
 * One-line renderings of runtime activity for terminals (`alloy dev`, `alloy logs`,
 * `alloy executions`): time, workflow, status, duration, id. Pure functions over a chalk
 * instance, so colour follows the CLI's rules (NO_COLOR, TTY) decided by the caller.
 */
import type { ChalkInstance } from 'chalk';
import type { ExecutionRecord, StepRecord } from '../engine/types.js';
import type { LogEntry } from './event-log.js';
import type { ExecutionSummary } from './runtime-server.js';
import { streamNote, type StreamNote } from './stream-note.js';

export function clockTime(ms: number | string | undefined): string {
  const d = ms === undefined ? new Date() : new Date(ms);
  return d.toISOString().slice(11, 19);
}

export function formatDuration(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '-';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)}s`;
  return `${Math.floor(ms / 60_000)}m${Math.round((ms % 60_000) / 1000)}s`;
}

export function statusMark(c: ChalkInstance, status: string): string {
  switch (status) {
    case 'succeeded':
      return c.green('✓ succeeded');
    case 'failed':
      return c.red('✗ failed   ');
    case 'filtered':
      return c.yellow('∅ filtered ');
    case 'running':
      return c.cyan('… running  ');
    case 'skipped':
      return c.dim('- skipped  ');
    default:
      return c.dim(status.padEnd(11));
  }
}

/**
 * `10:42:01  ✓ succeeded  shopify-sync/create-order  123ms  ex_…  [reason or error]`; a failed
 * stream delivery reads `✓ succeeded · stream failed  …  <why it failed>`.
 */
export function executionLine(
  c: ChalkInstance,
  e: { time?: number | string; workflow: string; status: string; durationMs?: number; id: string; message?: string; stream?: StreamNote },
): string {
  const streamFailed = e.stream?.status === 'failed';
  const message = e.message && e.message !== e.status ? e.message : streamFailed ? (e.stream!.error ?? 'stream delivery failed') : undefined;
  const extra = message ? `  ${e.status === 'failed' || streamFailed ? c.red(message) : c.dim(message)}` : '';
  const status = streamFailed ? `${statusMark(c, e.status).trimEnd()} ${c.red('· stream failed')}` : statusMark(c, e.status);
  return `${c.dim(clockTime(e.time))}  ${status}  ${e.workflow}  ${c.dim(formatDuration(e.durationMs))}  ${c.dim(e.id)}${extra}`;
}

// Every view shows one time per row, the same one: when the execution started.
export function recordLine(c: ChalkInstance, record: ExecutionRecord, durationMs?: number): string {
  return executionLine(c, {
    time: record.startedAt ?? record.createdAt,
    workflow: record.workflow,
    status: record.status,
    durationMs: record.durationMs ?? durationMs,
    id: record.id,
    message: record.error ? `${record.error.step ? `${record.error.step}: ` : ''}${record.error.message}` : record.reason,
    stream: streamNote(record.stream),
  });
}

/** `    ↳ order  ✓ succeeded  87ms  2 attempts` */
export function stepLine(c: ChalkInstance, step: StepRecord): string {
  const attempts = step.attempts > 1 ? c.dim(`  ${step.attempts} attempts`) : '';
  const error = step.error ? `  ${step.handled ? c.yellow(step.error.message) : c.red(step.error.message)}` : '';
  return `    ${c.dim('↳')} ${step.path}  ${statusMark(c, step.status)}  ${c.dim(formatDuration(step.durationMs))}${attempts}${error}`;
}

export function summaryLine(c: ChalkInstance, e: ExecutionSummary): string {
  return executionLine(c, {
    time: e.startedAt ?? e.createdAt,
    workflow: e.workflow,
    status: e.status,
    durationMs: e.durationMs,
    id: e.id,
    message: e.error ? `${e.error.step ? `${e.error.step}: ` : ''}${e.error.message}` : e.reason,
    stream: e.stream,
  });
}

export function logLine(c: ChalkInstance, entry: LogEntry): string {
  if (entry.kind === 'execution' && entry.executionId && entry.workflow) {
    return executionLine(c, {
      time: typeof entry.data?.startedAt === 'string' ? entry.data.startedAt : entry.time,
      workflow: entry.workflow,
      status: entry.status ?? '?',
      durationMs: typeof entry.data?.durationMs === 'number' ? entry.data.durationMs : undefined,
      id: entry.executionId,
      message: entry.message,
      stream: entry.data?.stream as StreamNote | undefined,
    });
  }
  return `${c.dim(clockTime(entry.time))}  ${entry.kind}  ${entry.message}`;
}

/** A short preview of a value for step traces. */
export function preview(value: unknown, max = 80): string {
  if (value === undefined) return '';
  const text = typeof value === 'string' ? JSON.stringify(value) : JSON.stringify(value) ?? String(value);
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/**
 * What a running execution waits for, from its record: `{ key, text }`, where `key` changes
 * only when the state does (not as the seconds count down), so a caller prints once per change.
 * e.g. `waiting: step order, retry 2 in 4 s`, `waiting: stream delivery, retry 1 in 4 s`.
 */
export function waitingStatus(record: ExecutionRecord, nowMs: number): { key: string; text: string } | undefined {
  const inSeconds = (iso: string) => {
    const s = Math.max(0, Math.ceil((Date.parse(iso) - nowMs) / 1000));
    return s > 0 ? ` in ${s} s` : ' now';
  };
  if (record.streamRetry) {
    const n = record.streamRetry.attempts;
    return { key: `stream:${n}`, text: `waiting: stream delivery, retry ${n}${inSeconds(record.streamRetry.at)}` };
  }
  const running = Object.values(record.steps ?? {}).filter((s) => s.status === 'running');
  const retrying = running.find((s) => s.retryAt !== undefined);
  if (retrying) {
    return { key: `retry:${retrying.path}:${retrying.attempts}`, text: `waiting: step ${retrying.path}, retry ${retrying.attempts}${inSeconds(retrying.retryAt!)}` };
  }
  if (record.status === 'queued') return { key: 'queued', text: 'waiting: queued for a worker' };
  return undefined;
}
