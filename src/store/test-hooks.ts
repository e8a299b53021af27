/**
 * TEST HOOK ONLY. `ALLOY_TEST_CRASH_AT=<phase>` makes the process SIGKILL itself when a
 * release or publish reaches that phase, so tests can prove that a process killed at any
 * point leaves a store `alloy fsck` finds consistent. It is read once by the command layer
 * and passed down; library code never reads the environment.
 */
export const CRASH_PHASES = [
  'objects-written',
  'lock-held',
  'release-object-written',
  'version-ref-created',
  'released',
  'publish-log-appended',
  'published',
] as const;
export type CrashPhase = (typeof CRASH_PHASES)[number];

export type CrashHook = (phase: CrashPhase) => void;

export const noCrash: CrashHook = () => {};

export function crashHookFromEnv(env: NodeJS.ProcessEnv): CrashHook {
  const wanted = env.ALLOY_TEST_CRASH_AT;
  if (!wanted) return noCrash;
  return (phase) => {
    if (phase === wanted) process.kill(process.pid, 'SIGKILL');
  };
}
