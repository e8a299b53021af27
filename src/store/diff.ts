/**
 * Step-level diff between two versions of an integration (pure; no I/O). Steps are matched
 * by `id` across the whole tree of nested steps, so a step that moved into an `if` branch
 * is "moved", not "removed + added". Within one step list, steps outside the longest common
 * subsequence of the old and new order are "moved" (one insertion does not move the rest).
 */
import type { IntegrationDef, Step, WorkflowDef } from '../core/model.js';
import { canonicalJson } from './canonical.js';
import { detectSecret } from './secrets.js';

export interface FieldChange {
  /** Dotted path, e.g. `with.email` or `stream.url`. */
  path: string;
  from?: unknown;
  to?: unknown;
}

export interface StepChange {
  id: string;
  change: 'added' | 'removed' | 'moved' | 'changed';
  /** Where the step is (new side; old side for removed), e.g. `steps[1].then[0]`. */
  at: string;
  /** For moved: the old place. */
  from?: string;
  fields?: FieldChange[];
}

export interface WorkflowDiff {
  name: string;
  status: 'added' | 'removed' | 'changed' | 'unchanged';
  /** Set when the trigger changed: the whole old and new trigger, and the fields that differ. */
  trigger?: { from: unknown; to: unknown; fields: FieldChange[] };
  fields: FieldChange[];
  steps: StepChange[];
}

export interface IntegrationDiff {
  integration: string;
  from: string;
  to: string;
  changed: boolean;
  fields: FieldChange[];
  workflows: WorkflowDiff[];
}

export interface DefinitionSet {
  integration: IntegrationDef;
  workflows: Map<string, WorkflowDef>;
}

const same = (a: unknown, b: unknown) => canonicalJson(a ?? null) === canonicalJson(b ?? null);

/** Never show a value that looks like a credential, even in a diff of the working tree. */
function redact(value: unknown, key?: string): unknown {
  if (typeof value === 'string') return detectSecret(key, value) ? '<redacted>' : value;
  if (Array.isArray(value)) return value.map((v) => redact(v, key));
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redact(v, k)]));
  return value;
}

export function diffFields(a: unknown, b: unknown, prefix = '', out: FieldChange[] = []): FieldChange[] {
  if (same(a, b)) return out;
  const key = prefix.split('.').pop()?.replace(/\[\d+\]$/, '');
  const isObj = (v: unknown) => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (isObj(a) && isObj(b)) {
    const ao = a as Record<string, unknown>;
    const bo = b as Record<string, unknown>;
    for (const k of [...new Set([...Object.keys(ao), ...Object.keys(bo)])].sort()) {
      diffFields(ao[k], bo[k], prefix ? `${prefix}.${k}` : k, out);
    }
    return out;
  }
  if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) {
    a.forEach((v, i) => diffFields(v, b[i], `${prefix}[${i}]`, out));
    return out;
  }
  out.push({ path: prefix || '(root)', ...(a === undefined ? {} : { from: redact(a, key) }), ...(b === undefined ? {} : { to: redact(b, key) }) });
  return out;
}

interface PlacedStep {
  id: string;
  own: Record<string, unknown>;
  container: string;
  index: number;
  at: string;
}

/** A step without its nested step lists: what "fields changed" compares. */
function ownFields(step: Step): Record<string, unknown> {
  const s = structuredClone(step) as unknown as Record<string, unknown>;
  delete s.then;
  delete s.else;
  if ('each' in s) delete s.steps;
  const branch = s.branch as Record<string, unknown> | undefined;
  if (branch && typeof branch === 'object') {
    if (Array.isArray(branch.cases)) branch.cases = (branch.cases as Record<string, unknown>[]).map(({ steps: _s, ...rest }) => rest);
    delete branch.default;
  }
  const onError = s.onError as Record<string, unknown> | undefined;
  if (onError && typeof onError === 'object') s.onError = { steps: '(nested)' };
  return s;
}

function childLists(step: Step): { key: string; steps: Step[] }[] {
  const s = step as unknown as Record<string, any>;
  const out: { key: string; steps: Step[] }[] = [];
  if (Array.isArray(s.then)) out.push({ key: 'then', steps: s.then });
  if (Array.isArray(s.else)) out.push({ key: 'else', steps: s.else });
  if ('each' in s && Array.isArray(s.steps)) out.push({ key: 'steps', steps: s.steps });
  if (s.branch && typeof s.branch === 'object') {
    (s.branch.cases ?? []).forEach((c: any, i: number) => Array.isArray(c?.steps) && out.push({ key: `branch.cases[${i}].steps`, steps: c.steps }));
    if (Array.isArray(s.branch.default)) out.push({ key: 'branch.default', steps: s.branch.default });
  }
  if (s.onError && typeof s.onError === 'object' && Array.isArray(s.onError.steps)) out.push({ key: 'onError.steps', steps: s.onError.steps });
  return out;
}

function placeSteps(steps: Step[] | undefined, container: string, out: Map<string, PlacedStep>): Map<string, PlacedStep> {
  (steps ?? []).forEach((step, index) => {
    const at = `${container}[${index}]`;
    const id = typeof step?.id === 'string' ? step.id : `#${at}`;
    out.set(id, { id, own: ownFields(step), container, index, at });
    for (const c of childLists(step)) placeSteps(c.steps, `${at}.${c.key}`, out);
  });
  return out;
}

/** Longest common subsequence of two id lists (lists are short: steps of one container). */
function lcs(a: string[], b: string[]): Set<string> {
  const dp: number[][] = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) dp[i][j] = a[i] === b[j] ? dp[i + 1][j + 1] + 1 : Math.max(dp[i + 1][j], dp[i][j + 1]);
  }
  const keep = new Set<string>();
  for (let i = 0, j = 0; i < a.length && j < b.length; ) {
    if (a[i] === b[j]) {
      keep.add(a[i]);
      i++;
      j++;
    } else if (dp[i + 1][j] >= dp[i][j + 1]) i++;
    else j++;
  }
  return keep;
}

export function diffSteps(before: Step[] | undefined, after: Step[] | undefined): StepChange[] {
  const a = placeSteps(before, 'steps', new Map());
  const b = placeSteps(after, 'steps', new Map());
  const changes: StepChange[] = [];
  for (const [id, s] of a) if (!b.has(id)) changes.push({ id, change: 'removed', at: s.at });
  for (const [id, s] of b) if (!a.has(id)) changes.push({ id, change: 'added', at: s.at });

  // Moves: container changed, or out of order within the same container.
  const byContainer = new Map<string, { old: PlacedStep[]; now: PlacedStep[] }>();
  for (const [id, s] of b) {
    const old = a.get(id);
    if (!old) continue;
    if (old.container !== s.container) {
      changes.push({ id, change: 'moved', at: s.at, from: old.at });
      continue;
    }
    const g = byContainer.get(s.container) ?? { old: [], now: [] };
    g.old.push(old);
    g.now.push(s);
    byContainer.set(s.container, g);
  }
  for (const g of byContainer.values()) {
    const oldOrder = [...g.old].sort((x, y) => x.index - y.index).map((s) => s.id);
    const newOrder = [...g.now].sort((x, y) => x.index - y.index).map((s) => s.id);
    const keep = lcs(oldOrder, newOrder);
    for (const s of g.now) if (!keep.has(s.id)) changes.push({ id: s.id, change: 'moved', at: s.at, from: a.get(s.id)!.at });
  }
  for (const [id, s] of b) {
    const old = a.get(id);
    if (!old) continue;
    const fields = diffFields(old.own, s.own);
    if (fields.length) changes.push({ id, change: 'changed', at: s.at, fields });
  }
  const order = { removed: 0, added: 1, moved: 2, changed: 3 };
  return changes.sort((x, y) => order[x.change] - order[y.change] || x.at.localeCompare(y.at));
}

export function diffWorkflow(name: string, a: WorkflowDef | undefined, b: WorkflowDef | undefined): WorkflowDiff {
  if (!a && b) return { name, status: 'added', fields: [], steps: diffSteps(undefined, b.steps) };
  if (a && !b) return { name, status: 'removed', fields: [], steps: diffSteps(a.steps, undefined) };
  if (!a || !b) return { name, status: 'unchanged', fields: [], steps: [] };
  const { steps: sa, trigger: ta, ...restA } = a;
  const { steps: sb, trigger: tb, ...restB } = b;
  const steps = diffSteps(sa, sb);
  const fields = diffFields(restA, restB);
  const trigger = same(ta, tb) ? undefined : { from: redact(ta), to: redact(tb), fields: diffFields(ta, tb) };
  const status = steps.length || fields.length || trigger ? 'changed' : 'unchanged';
  return { name, status, ...(trigger ? { trigger } : {}), fields, steps };
}

export function diffDefinitions(integration: string, from: { label: string; defs: DefinitionSet | undefined }, to: { label: string; defs: DefinitionSet }): IntegrationDiff {
  const a = from.defs;
  const b = to.defs;
  const names = [...new Set([...(a?.workflows.keys() ?? []), ...b.workflows.keys()])].sort();
  const workflows = names.map((n) => diffWorkflow(n, a?.workflows.get(n), b.workflows.get(n))).filter((w) => w.status !== 'unchanged');
  const fields = a ? diffFields(a.integration, b.integration) : [];
  return { integration, from: from.label, to: to.label, changed: !a || fields.length > 0 || workflows.length > 0, fields, workflows };
}
