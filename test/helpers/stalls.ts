/**
 * Event-loop stalls measured by CPU, not by the clock: on a loaded machine a process waits
 * for a CPU for long stretches between turns, so a wall-clock gap says little about whether
 * the loop was held. A 1 ms timer notes, for every gap between its runs, the wall time and the
 * CPU time of the event loop's thread in it; a gap whose CPU time is large is a held loop.
 */
import { existsSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

const mainThreadStat = `/proc/self/task/${process.pid}/stat`;
const hasThreadStat = existsSync(mainThreadStat);

/**
 * CPU milliseconds of this process's main thread (the event loop) so far: Linux counts it
 * per thread in /proc/self/task/<tid>/stat (clock ticks, usually 10 ms). Elsewhere the whole
 * process's CPU (GC helper threads included) stands in.
 */
export function mainThreadCpuMs(): number {
  if (!hasThreadStat) {
    const c = process.cpuUsage();
    return (c.user + c.system) / 1000;
  }
  const text = readFileSync(mainThreadStat, 'utf8');
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // USER_HZ is 100 on Linux
}

/** Gaps between runs of a 1 ms timer: the longest by wall and by the loop thread's CPU, and how many held it `blockMs` of CPU or more. */
export function stallMeter(blockMs = 50) {
  let timer: NodeJS.Timeout | undefined;
  let maxCpuMs = 0;
  let maxWallMs = 0;
  let blocks = 0;
  return {
    start() {
      let wall = performance.now();
      let cpu = mainThreadCpuMs();
      const tick = () => {
        const w = performance.now();
        const c = mainThreadCpuMs();
        const wallMs = w - wall;
        const loopMs = Math.min(c - cpu, wallMs);
        maxCpuMs = Math.max(maxCpuMs, loopMs);
        maxWallMs = Math.max(maxWallMs, wallMs);
        if (loopMs >= blockMs) blocks++;
        wall = w;
        cpu = c;
        timer = setTimeout(tick, 1);
      };
      timer = setTimeout(tick, 1);
    },
    stop() {
      clearTimeout(timer);
    },
    get result() {
      return { maxCpuMs, maxWallMs, blocks };
    },
  };
}

/** Runs `work` under a stall meter: its result and the longest gap's CPU time of the loop thread (ms). */
export async function longestTurnCpu<T>(work: () => Promise<T>): Promise<{ result: T; gap: number }> {
  const meter = stallMeter();
  meter.start();
  try {
    const result = await work();
    return { result, gap: meter.result.maxCpuMs };
  } finally {
    meter.stop();
  }
}
