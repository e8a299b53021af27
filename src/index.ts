/**
 * alloy's programmatic API: the same pieces the CLI is a thin shell over. Import what you
 * need; heavy parts (sqlite, the HTTP runtime) live behind their own modules.
 */
export * from './errors.js';
export type * from './core/model.js';
export type { Diagnostic, Severity } from './core/diagnostics.js';
export type { LoadedProject, LoadedIntegration, LoadedWorkflow, LoadedConnector } from './core/project-types.js';
export { loadProject, findConfig, checkStandaloneFile } from './core/project.js';
export { compileTemplate, compileValue, renderTemplate, renderValue, scanTemplate } from './core/expressions.js';
export { validatePaths } from './core/validate-paths.js';
export type { ValidateResult } from './core/validate-paths.js';
export {
  compileWorkflow,
  plan,
  executeWorkflow,
  createExecutionRecord,
  signStandardWebhook,
  verifyStandardWebhook,
  standardWebhookHeaders,
  realClock,
} from './engine/index.js';
export type { ExecutionRecord, StepRecord, EngineDeps } from './engine/index.js';
export {
  builtinConnectorManifests,
  createConnectorRegistry,
  createHttpClient,
  resolveConnection,
  verifyShopifyWebhook,
  signShopifyWebhook,
  shopifyWebhookHeaders,
} from './connectors/index.js';
export { startTunnel, startRelayServer } from './tunnel/index.js';
export { runTests, runHarness, compareDefinitions, toJunitXml, testFileFromRecord } from './test-runner/index.js';
export type { RunTestsOptions, TestRunSummary, TestResult, TestFailure, TestFileDef, Comparison } from './test-runner/index.js';
