/**
 * The runtime's view of the definitions: every workflow of the loaded project, indexed by
 * what triggers it (custom event name, app + topic, custom webhook name), with each
 * trigger schema compiled once (ajv) when the definitions load, not per request.
 * Hot reload builds a new index and swaps it in; executions already running keep theirs.
 */
import { createHash } from 'node:crypto';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { getUserAjv } from '../core/schema-check.js';
import type { LoadedProject, LoadedWorkflow } from '../core/project-types.js';
import type { AppEventTrigger, CustomEventTrigger, WebhookTrigger } from '../core/model.js';

export interface RoutedWorkflow {
  /** `<integration>/<workflow>`. */
  key: string;
  workflow: LoadedWorkflow;
  /** Compiled trigger schema, when the trigger has one. */
  validate?: ValidateFunction;
}

export interface RuntimeDefinitions {
  project: LoadedProject;
  /** Working-tree hash of the definitions (`wt-<12 hex>`), stored on every execution. */
  version: string;
  workflows: Map<string, RoutedWorkflow>;
  byEvent: Map<string, RoutedWorkflow[]>;
  /** Keyed `<app>:<topic>`, e.g. `shopify:orders/create`. */
  byAppEvent: Map<string, RoutedWorkflow[]>;
  byWebhook: Map<string, RoutedWorkflow[]>;
}

export interface SchemaViolation {
  workflow: string;
  /** JSON pointer into `data` (`/email`), empty for the root. */
  path: string;
  message: string;
}

export function workflowKey(w: LoadedWorkflow): string {
  return `${w.integration}/${w.name}`;
}

export function indexDefinitions(project: LoadedProject): RuntimeDefinitions {
  const defs: RuntimeDefinitions = {
    project,
    version: definitionsVersion(project),
    workflows: new Map(),
    byEvent: new Map(),
    byAppEvent: new Map(),
    byWebhook: new Map(),
  };
  const add = (map: Map<string, RoutedWorkflow[]>, key: string, r: RoutedWorkflow) => {
    const list = map.get(key);
    if (list) list.push(r);
    else map.set(key, [r]);
  };
  for (const integration of project.integrations) {
    for (const w of integration.workflows) {
      const trigger = w.def.trigger as unknown as Record<string, unknown>;
      const routed: RoutedWorkflow = { key: workflowKey(w), workflow: w };
      const schema = (trigger as { schema?: unknown }).schema;
      if (schema && typeof schema === 'object') routed.validate = compileSchema(schema as object);
      defs.workflows.set(routed.key, routed);
      if (typeof trigger.app === 'string' && typeof trigger.event === 'string') {
        const t = trigger as unknown as AppEventTrigger;
        add(defs.byAppEvent, `${t.app}:${t.event}`, routed);
      } else if (typeof trigger.event === 'string') {
        add(defs.byEvent, (trigger as unknown as CustomEventTrigger).event, routed);
      } else if (typeof trigger.webhook === 'string') {
        add(defs.byWebhook, (trigger as unknown as WebhookTrigger).webhook, routed);
      }
    }
  }
  return defs;
}

function compileSchema(schema: object): ValidateFunction | undefined {
  try {
    return getUserAjv().compile(schema);
  } catch {
    // Validation already reported a bad schema; without a validator the data is accepted as is.
    return undefined;
  }
}

/** Validates `data` against each workflow's trigger schema; every violation with its JSON path. */
export function checkTriggerData(routes: readonly RoutedWorkflow[], data: unknown): SchemaViolation[] {
  const out: SchemaViolation[] = [];
  for (const r of routes) {
    if (!r.validate || r.validate(data)) continue;
    for (const e of r.validate.errors ?? []) out.push({ workflow: r.key, path: errorPath(e), message: errorMessage(e) });
  }
  return out;
}

function errorPath(e: ErrorObject): string {
  if (e.keyword === 'required') return `${e.instancePath}/${(e.params as { missingProperty: string }).missingProperty}`;
  if (e.keyword === 'additionalProperties') {
    return `${e.instancePath}/${(e.params as { additionalProperty: string }).additionalProperty}`;
  }
  return e.instancePath;
}

function errorMessage(e: ErrorObject): string {
  if (e.keyword === 'required') return 'is required';
  if (e.keyword === 'additionalProperties') return 'is not allowed';
  return e.message ?? e.keyword;
}

/** A hash of the normalized definitions: the same files give the same version. */
export function definitionsVersion(project: LoadedProject): string {
  const h = createHash('sha256');
  const workflows = project.integrations.flatMap((i) => i.workflows).sort((a, b) => workflowKey(a).localeCompare(workflowKey(b)));
  for (const w of workflows) h.update(workflowKey(w)).update('\0').update(JSON.stringify(w.def)).update('\0');
  for (const c of [...project.connectors].sort((a, b) => a.file.localeCompare(b.file))) h.update(JSON.stringify(c.def)).update('\0');
  return `wt-${h.digest('hex').slice(0, 12)}`;
}

/** What changed between two definition sets, for the reload message. */
export function diffDefinitions(before: RuntimeDefinitions | undefined, after: RuntimeDefinitions): string[] {
  const lines: string[] = [];
  const prev = before?.workflows ?? new Map<string, RoutedWorkflow>();
  for (const [key, r] of after.workflows) {
    const old = prev.get(key);
    if (!old) lines.push(`+ ${key}`);
    else if (JSON.stringify(old.workflow.def) !== JSON.stringify(r.workflow.def)) lines.push(`~ ${key}`);
  }
  for (const key of prev.keys()) if (!after.workflows.has(key)) lines.push(`- ${key}`);
  return lines;
}
