/** Workflow tests as code: the runner behind `alloy test`, `release`, `compare` and `replay --version`. */
export { runTests, mergeSetup, eventOf, testExecutionId, assertionContext } from './run.js';
export type { RunTestsOptions } from './run.js';
export { runHarness, virtualClock, compiledFor, DEFAULT_TEST_CLOCK } from './harness.js';
export type { HarnessInput } from './harness.js';
export { formatResultLine, formatSummary, toJunitXml } from './report.js';
export { partialMatch, lineDiff } from './match.js';
export type * from './types.js';
export { compareDefinitions, diffRuns } from './compare.js';
export type { Comparison, CompareSide, StepChange, Verdict } from './compare.js';
export { answersFromRecord, streamPlaceholders, testFileFromRecord } from './recorded.js';
