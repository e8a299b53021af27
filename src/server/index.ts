/** Public surface of the runtime: the event log, the HTTP server, the dev runtime, and the API client. */
export { openEventLog, EventLog, isTerminal, TERMINAL_STATUSES } from './event-log.js';
export type { EventLogOptions, DeliveryInput, NewExecution, ExecutionRow, LogEntry, ExecutionFilter, AppendResult, EventRef } from './event-log.js';
export { indexDefinitions, checkTriggerData, diffDefinitions, definitionsVersion, workflowKey } from './definitions.js';
export type { RuntimeDefinitions, RoutedWorkflow, SchemaViolation } from './definitions.js';
export { createRuntimeServer, summarizeExecution, hasSideEffects, DEFAULT_BODY_LIMIT, DEFAULT_CONCURRENCY } from './runtime-server.js';
export type { RuntimeServer, RuntimeServerOptions, RuntimeEvent, ExecutionSummary } from './runtime-server.js';
export { newExecutionRecord, createStepTracker } from './executor.js';
export type { WorkflowExecutor, ExecuteOptions } from './executor.js';
export { createEngineExecutor, referencedSecretNames } from './engine-executor.js';
export { startDevRuntime } from './dev-runtime.js';
export type { DevRuntime, DevRuntimeOptions, DevEvent } from './dev-runtime.js';
export { RuntimeClient, findRuntime, errorFromResponse } from './client.js';
export { buildShopifyDelivery, readDataArg, readFixture, resignFixture } from './emit.js';
export type { DeliveryFixture } from './emit.js';
export { devLogFile, devInfoFile, readDevInfo, loadOrCreateStreamSecret, loadProjectEnv } from './dev-state.js';
export type { DevInfo } from './dev-state.js';
export { openLogReader } from './log-reader.js';
