/** The JSON Schemas and the TypeScript model must name the same keys (see src/core/model-keys.ts). */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MODEL_KEYS } from '../../src/core/model-keys.js';
import { REPO_ROOT } from '../helpers/cli.js';

type Schema = { properties?: Record<string, unknown>; $defs?: Record<string, Schema> };
const load = (name: string) => JSON.parse(readFileSync(path.join(REPO_ROOT, 'schemas', `${name}.schema.json`), 'utf8')) as Schema;
const keys = (o: object | undefined) => Object.keys(o ?? {}).sort();

describe('schemas and model types agree', () => {
  const workflow = load('workflow');
  it.each([
    ['config', () => load('config'), MODEL_KEYS.projectConfig],
    ['integration', () => load('integration'), MODEL_KEYS.integration],
    ['workflow', () => workflow, MODEL_KEYS.workflow],
    ['workflow trigger', () => workflow.$defs!.trigger, MODEL_KEYS.trigger],
    ['workflow step', () => workflow.$defs!.step, MODEL_KEYS.step],
    ['workflow retry', () => workflow.$defs!.retry, MODEL_KEYS.retry],
    ['workflow stream', () => workflow.$defs!.stream, MODEL_KEYS.stream],
    ['workflow verification', () => workflow.$defs!.verification, MODEL_KEYS.verification],
    ['connector', () => load('connector'), MODEL_KEYS.connector],
  ] as const)('%s', (_name, schema, model) => {
    expect(keys(schema().properties)).toEqual(keys(model));
  });
});
