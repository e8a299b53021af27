/**
 * The keys of the model types, as values, so a test can compare them with the JSON
 * Schemas (test/core/schema-model-sync.test.ts). `Record<keyof T, true>` makes the compiler
 * reject a list that misses a key of T or names one T does not have: the build fails when
 * a type changes, and the test fails when the schema does not follow.
 */
import type {
  ActionStep,
  BranchStep,
  CodeStep,
  ConnectorManifest,
  DelayStep,
  EachStep,
  IfStep,
  IntegrationDef,
  ProjectConfig,
  RetryPolicy,
  StopStep,
  StreamSettings,
  WebhookVerification,
  WorkflowDef,
  AppEventTrigger,
  CustomEventTrigger,
  WebhookTrigger,
  ScheduleTrigger,
} from './model.js';

type Keys<T> = Record<keyof T, true>;
type UnionKeys<T> = T extends unknown ? keyof T : never;
type StepKeys = UnionKeys<ActionStep | IfStep | BranchStep | EachStep | DelayStep | StopStep | CodeStep>;
type TriggerKeys = UnionKeys<CustomEventTrigger | AppEventTrigger | WebhookTrigger | ScheduleTrigger>;

const projectConfig: Keys<ProjectConfig> = { apiVersion: true, kind: true, name: true, integrationsDir: true, connectorsDir: true, store: true, remotes: true, dev: true, limits: true, egress: true, apps: true, release: true, serve: true };
const integration: Keys<IntegrationDef> = { apiVersion: true, kind: true, name: true, app: true, description: true, connectors: true, config: true };
const workflow: Keys<WorkflowDef> = { apiVersion: true, kind: true, name: true, description: true, trigger: true, steps: true, stream: true, timeout: true };
const trigger: Record<TriggerKeys, true> = { event: true, schema: true, app: true, webhook: true, verify: true, schedule: true, poll: true };
const step: Record<StepKeys, true> = {
  id: true, name: true, when: true, retry: true, timeout: true, onError: true,
  uses: true, with: true, if: true, then: true, else: true, branch: true, each: true, as: true, concurrency: true, stop: true, steps: true, delay: true, code: true,
};
const retry: Keys<RetryPolicy> = { attempts: true, initialDelay: true, maxDelay: true, factor: true };
const stream: Keys<StreamSettings> = { url: true, secret: true, retry: true, timeout: true };
const verification: Keys<WebhookVerification> = { scheme: true, header: true, encoding: true, secret: true };
const connector: Keys<ConnectorManifest> = { apiVersion: true, kind: true, name: true, description: true, baseUrl: true, auth: true, connection: true, actions: true, triggers: true };

export const MODEL_KEYS = { projectConfig, integration, workflow, trigger, step, retry, stream, verification, connector };
