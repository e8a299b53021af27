/**
 * The invalid corpus: every broken file (or broken mini project) under
 * test/fixtures/invalid/ must report its code at its line:column, exit 2, and print no
 * stack trace. Plus a 100 MB file, made here, refused by size without being read.
 */
import { open } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, runInProcess, STACK_LINE, tempDir } from '../helpers/cli.js';

const CORPUS = path.join(REPO_ROOT, 'test', 'fixtures', 'invalid');

// [file or folder, code it must report, line, column]
const CASES: [string, string, number, number][] = [
  ['yaml-syntax.yaml', 'E_YAML_SYNTAX', 7, 1],
  ['yaml-tab-indent.yaml', 'E_YAML_TAB', 5, 1],
  ['yaml-duplicate-key.yaml', 'E_YAML_DUPLICATE_KEY', 4, 1],
  ['yaml-multiple-documents.yaml', 'E_YAML_MULTIPLE_DOCUMENTS', 9, 1],
  ['not-an-object.yaml', 'E_SCHEMA_TYPE', 1, 1],
  ['empty.yaml', 'E_FILE_EMPTY', 1, 1],
  ['only-comments.yaml', 'E_FILE_EMPTY', 1, 1],
  ['binary.yaml', 'E_FILE_BINARY', 1, 1],
  ['wrong-type-steps.yaml', 'E_SCHEMA_TYPE', 6, 8],
  ['unknown-key-root.yaml', 'E_SCHEMA_UNKNOWN_KEY', 9, 1],
  ['unknown-key-step.yaml', 'E_SCHEMA_UNKNOWN_KEY', 9, 5],
  ['missing-trigger.yaml', 'E_SCHEMA_MISSING_KEY', 1, 1],
  ['missing-kind.yaml', 'E_UNKNOWN_KIND', 1, 1],
  ['wrong-kind.yaml', 'E_UNKNOWN_KIND', 2, 7],
  ['wrong-api-version.yaml', 'E_SCHEMA_VALUE', 1, 13],
  ['bad-name.yaml', 'E_SCHEMA_PATTERN', 3, 7],
  ['bad-duration.yaml', 'E_SCHEMA_VALUE', 6, 10],
  ['bad-expression.yaml', 'E_EXPRESSION_SYNTAX', 10, 25],
  ['unclosed-template.yaml', 'E_EXPRESSION_SYNTAX', 10, 15],
  ['unknown-name-in-expression.yaml', 'E_EXPRESSION_UNKNOWN_NAME', 10, 18],
  ['secrets-in-step.yaml', 'E_EXPRESSION_SECRETS', 10, 18],
  ['unknown-step-type.yaml', 'E_UNKNOWN_STEP', 8, 11],
  ['unknown-connector.yaml', 'E_UNKNOWN_CONNECTOR', 8, 11],
  ['unknown-action.yaml', 'E_UNKNOWN_ACTION', 8, 11],
  ['action-input-unknown-field.yaml', 'E_ACTION_INPUT_UNKNOWN_KEY', 10, 7],
  ['action-input-wrong-literal.yaml', 'E_ACTION_INPUT_TYPE', 12, 21],
  ['action-input-missing-required.yaml', 'E_ACTION_INPUT_MISSING_KEY', 9, 5],
  ['duplicate-step-id.yaml', 'E_STEP_DUPLICATE_ID', 9, 9],
  // The engine kept steps in plain objects: a step `constructor` was taken for one already run and never ran.
  ['reserved-step-id.yaml', 'E_STEP_ID_RESERVED', 9, 9],
  ['step-without-kind.yaml', 'E_STEP_KIND', 7, 5],
  ['step-mixed-kinds.yaml', 'E_STEP_KIND', 9, 5],
  ['key-wrong-kind.yaml', 'E_STEP_KEY', 9, 5],
  ['unknown-step-reference.yaml', 'E_STEP_REF_UNKNOWN', 12, 20],
  ['forward-reference.yaml', 'E_STEP_REF_FORWARD', 10, 20],
  ['reference-cycle-self.yaml', 'E_STEP_REF_CYCLE', 10, 20],
  ['reference-cycle-enclosing.yaml', 'E_STEP_REF_CYCLE', 13, 28],
  ['unknown-trigger-event.yaml', 'E_UNKNOWN_TRIGGER', 6, 10],
  ['invalid-trigger-schema.yaml', 'E_TRIGGER_SCHEMA_INVALID', 7, 5],
  ['connector-bad-auth.yaml', 'E_SCHEMA_VALUE', 6, 9],
  ['schedule-not-cron.yaml', 'E_SCHEDULE_INVALID', 5, 13],
  ['schedule-bad-timezone.yaml', 'E_SCHEDULE_INVALID', 7, 15],
  ['code-syntax-error.yaml', 'E_CODE_SYNTAX', 10, 27],
  ['project-config-unknown-key', 'E_SCHEMA_UNKNOWN_KEY', 4, 1],
  ['project-app-mismatch', 'E_TRIGGER_APP_MISMATCH', 5, 8],
  ['project-duplicate-workflow-names', 'E_WORKFLOW_DUPLICATE_NAME', 3, 7],
  ['project-missing-integration-file', 'E_INTEGRATION_FILE_MISSING', 1, 1],
];

interface JsonDiagnostic {
  file: string;
  line: number;
  column: number;
  endLine: number;
  endColumn: number;
  severity: string;
  code: string;
  message: string;
  hint?: string;
}

describe('invalid corpus', () => {
  it('covers at least 25 broken inputs, and every file in the corpus has a case', async () => {
    const { readdir } = await import('node:fs/promises');
    const entries = (await readdir(CORPUS)).sort();
    expect(CASES.length).toBeGreaterThanOrEqual(25);
    expect(entries).toEqual(CASES.map((c) => c[0]).sort());
  });

  it.each(CASES)('%s reports %s at %i:%i', async (name, code, line, column) => {
    const target = path.join('test', 'fixtures', 'invalid', name);
    const json = await runInProcess(['validate', target, '--json']);
    expect(json.code).toBe(2);
    const diagnostics = JSON.parse(json.stdout) as JsonDiagnostic[];
    const match = diagnostics.find((d) => d.code === code);
    expect(match, `diagnostics were: ${json.stdout}`).toBeDefined();
    expect([match!.line, match!.column]).toEqual([line, column]);
    expect(match!.severity).toBe('error');
    expect(match!.message.length).toBeGreaterThan(5);
    for (const key of ['file', 'line', 'column', 'endLine', 'endColumn', 'severity', 'code', 'message']) {
      expect(match).toHaveProperty(key);
    }

    const human = await runInProcess(['validate', target]);
    expect(human.code).toBe(2);
    expect(human.stdout).toContain(`:${line}:${column}  error  ${code}`);
    expect(human.stdout + human.stderr).not.toMatch(STACK_LINE);
  });

  it('refuses a 100 MB file by its size without reading it', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const file = path.join(dir, 'huge.yaml');
      const handle = await open(file, 'w');
      // A sparse file: 100 MB long, almost nothing on disk.
      await handle.truncate(100 * 1024 * 1024);
      await handle.close();
      const before = process.memoryUsage().rss;
      const r = await runInProcess(['validate', file, '--json']);
      const grew = process.memoryUsage().rss - before;
      expect(r.code).toBe(2);
      const [d] = JSON.parse(r.stdout) as JsonDiagnostic[];
      expect(d.code).toBe('E_FILE_TOO_LARGE');
      expect(d.message).toContain('100.0 MiB');
      expect(grew).toBeLessThan(50 * 1024 * 1024);
    } finally {
      await cleanup();
    }
  });

  it('hints name the fix (did you mean …)', async () => {
    const r = await runInProcess(['validate', 'test/fixtures/invalid/unknown-key-step.yaml', '--json']);
    const [d] = JSON.parse(r.stdout) as JsonDiagnostic[];
    expect(d.hint).toBe('did you mean "with"?');
    const s = await runInProcess(['validate', 'test/fixtures/invalid/unknown-step-type.yaml', '--json']);
    expect((JSON.parse(s.stdout) as JsonDiagnostic[])[0].hint).toBe('did you mean "transform"?');
  });

  it('reports every problem of a folder in one run, sorted by file and position', async () => {
    const r = await runInProcess(['validate', 'test/fixtures/invalid', '--json']);
    expect(r.code).toBe(2);
    const diagnostics = JSON.parse(r.stdout) as JsonDiagnostic[];
    const files = new Set(diagnostics.map((d) => d.file));
    expect(files.size).toBeGreaterThanOrEqual(CASES.length - 4);
    const keys = diagnostics.map((d) => `${d.file}\u0000${String(d.line).padStart(6, '0')}`);
    expect(keys).toEqual([...keys].sort((a, b) => a.localeCompare(b)));
  });
});

describe('build-time validators', () => {
  it('the built binary (ajv standalone code) reports exactly what runtime-compiled schemas report', async () => {
    const { existsSync } = await import('node:fs');
    expect(existsSync(path.join(REPO_ROOT, 'dist', 'core', 'generated', 'validators.cjs'))).toBe(true);
    const { runBin } = await import('../helpers/cli.js');
    const built = await runBin(['validate', 'test/fixtures/invalid', '--json']);
    const source = await runInProcess(['validate', 'test/fixtures/invalid', '--json']);
    expect(built.code).toBe(2);
    expect(JSON.parse(built.stdout)).toEqual(JSON.parse(source.stdout));
  });
});
