// `alloy validate` over a generated project of 1,000 workflow files, against a floor that
// only does yaml.parse plus an already-compiled ajv validation of the same files (aim <= 2x).
// Two views: whole processes (what a user waits for), and in-process work only.
import { mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fmt, median, printTable, ratio, timeAsync, timeSpawn } from './lib.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = path.join(root, 'bin', 'alloy.js');
const runs = Number(process.env.BENCH_RUNS ?? 5);
const WORKFLOWS = 1000;
const PER_INTEGRATION = 100;

function workflow(i) {
  return `# yaml-language-server: $schema=../../../schemas/workflow.schema.json
apiVersion: alloy/v1
kind: Workflow
name: wf-${i}
description: generated workflow ${i}
trigger:
  event: acme.thing.${i}
  schema:
    type: object
    required: [email]
    properties:
      email: { type: string }
      items: { type: array }
steps:
  - id: lookup
    uses: http
    with:
      method: GET
      url: "https://api.example.test/things/{{ event.id }}"
  - id: check
    if: "{{ $count(event.items) > 0 }}"
    then:
      - id: map
        uses: transform
        with:
          email: "{{ event.email }}"
          total: "{{ $sum(event.items.price) }}"
          first: "{{ steps.lookup.output.body.name }}"
  - id: order
    uses: shopify/createOrder
    with:
      email: "{{ event.email }}"
      lineItems: "{{ [event.items.{ 'title': title, 'quantity': quantity }] }}"
    retry: { attempts: 3, initialDelay: 500ms }
`;
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'alloy-bench-validate-'));
writeFileSync(path.join(dir, 'alloy.config.yaml'), 'name: bench\n');
const files = [];
for (let i = 0; i < WORKFLOWS; i++) {
  const integration = `int-${Math.floor(i / PER_INTEGRATION)}`;
  const wfDir = path.join(dir, 'integrations', integration, 'workflows');
  if (i % PER_INTEGRATION === 0) {
    mkdirSync(wfDir, { recursive: true });
    writeFileSync(path.join(dir, 'integrations', integration, 'integration.yaml'), `apiVersion: alloy/v1\nkind: Integration\nname: ${integration}\napp: shopify\n`);
  }
  const file = path.join(wfDir, `wf-${i}.yaml`);
  writeFileSync(file, workflow(i));
  files.push(file);
}

// The floor, as its own process: parse every file and validate with a compiled schema.
const floorScript = path.join(dir, 'floor.mjs');
writeFileSync(
  floorScript,
  `import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
const require = createRequire(${JSON.stringify(path.join(root, 'package.json'))});
const { parse } = require('yaml');
const Ajv2020 = require('ajv/dist/2020.js').default;
const ajv = new Ajv2020({ strict: true, allErrors: true });
require('ajv-formats').default(ajv);
const validate = ajv.compile(JSON.parse(readFileSync(${JSON.stringify(path.join(root, 'schemas', 'workflow.schema.json'))}, 'utf8')));
const base = ${JSON.stringify(path.join(dir, 'integrations'))};
let bad = 0;
for (const i of readdirSync(base)) for (const f of readdirSync(path.join(base, i, 'workflows'))) {
  if (!validate(parse(readFileSync(path.join(base, i, 'workflows', f), 'utf8')))) bad++;
}
if (bad) { console.error(bad + ' invalid'); process.exit(1); }
`,
);

const proc = { floor: [], alloy: [] };
for (let i = 0; i < runs; i++) {
  proc.floor.push(timeSpawn(process.execPath, [floorScript]));
  proc.alloy.push(timeSpawn(process.execPath, [bin, 'validate', '-C', dir]));
}

// In-process: the same work without process start-up, schemas compiled beforehand.
const { parse } = await import('yaml');
const { getValidator } = await import(path.join(root, 'dist/core/schema-check.js'));
const { validatePaths } = await import(path.join(root, 'dist/core/validate-paths.js'));
const { builtinConnectorManifests } = await import(path.join(root, 'dist/connectors/builtin-manifests.js'));
const validate = getValidator('workflow');
const inproc = { floor: [], alloy: [] };
for (let i = 0; i < runs; i++) {
  inproc.floor.push(
    await timeAsync(async () => {
      for (const f of files) if (!validate(parse(readFileSync(f, 'utf8')))) throw new Error('invalid');
    }),
  );
  inproc.alloy.push(
    await timeAsync(async () => {
      const r = await validatePaths(dir, [], builtinConnectorManifests);
      if (r.diagnostics.some((d) => d.severity === 'error')) throw new Error(JSON.stringify(r.diagnostics[0]));
    }),
  );
}
rmSync(dir, { recursive: true, force: true });
void readdirSync;

printTable(`alloy validate, ${WORKFLOWS} workflow files (median of ${runs} runs)`, [
  ['measure', 'floor (yaml.parse + compiled ajv)', 'alloy validate', 'ratio'],
  ['whole process', fmt(median(proc.floor)), fmt(median(proc.alloy)), ratio(median(proc.alloy), median(proc.floor))],
  ['in-process', fmt(median(inproc.floor)), fmt(median(inproc.alloy)), ratio(median(inproc.alloy), median(inproc.floor))],
]);
console.log('  alloy validate also checks meaning: step references, connectors and action inputs, and compiles every JSONata expression.');
