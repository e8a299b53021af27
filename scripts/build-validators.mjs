#!/usr/bin/env node
// Generates dist/core/generated/validators.cjs: ajv "standalone" validation code for the
// shipped schemas, so `alloy validate` does not compile schemas at run time. The options
// must match getAjv() in src/core/schema-check.ts (strict, allErrors, verbose).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(root, 'package.json'));
const Ajv2020 = require('ajv/dist/2020.js').default;
const standaloneCode = require('ajv/dist/standalone').default;

const names = ['workflow', 'integration', 'config', 'connector', 'test', 'tunnel-frame'];
const ajv = new Ajv2020({ strict: true, allErrors: true, verbose: true, code: { source: true } });
const refs = {};
for (const name of names) {
  const schema = JSON.parse(readFileSync(path.join(root, 'schemas', `${name}.schema.json`), 'utf8'));
  ajv.addSchema(schema);
  refs[name] = schema.$id;
}
const out = path.join(root, 'dist', 'core', 'generated');
mkdirSync(out, { recursive: true });
writeFileSync(path.join(out, 'validators.cjs'), standaloneCode(ajv, refs));
console.log(`wrote ${path.relative(root, path.join(out, 'validators.cjs'))} (${names.join(', ')})`);

// For user-written schemas (the lenient ajv of getUserAjv in src/core/schema-check.ts, same
// options): the draft 2020-12 meta-schema (is a trigger schema valid?) and the input schema
// of every built-in connector action (checking `with:`), so `alloy validate` compiles none
// of them at run time (issue 13: that and loading ajv were most of its time).
const { _ } = require('ajv/dist/compile/codegen');
const addFormats = require('ajv-formats').default;
const userAjv = new Ajv2020({ strict: false, allErrors: true, verbose: true, code: { source: true, formats: _`require("ajv-formats/dist/formats").fullFormats` } });
addFormats(userAjv);
const { builtinConnectorManifests } = await import(pathToFileURL(path.join(root, 'dist', 'connectors', 'builtin-manifests.js')).href);
const userRefs = { meta: 'https://json-schema.org/draft/2020-12/schema' };
const inputs = [];
for (const m of builtinConnectorManifests) {
  for (const [action, def] of Object.entries(m.actions ?? {})) {
    if (!def?.input || typeof def.input !== 'object') continue;
    const key = `input${inputs.length}`;
    userAjv.addSchema(def.input, key);
    userRefs[key] = key;
    inputs.push({ key, json: JSON.stringify(def.input), name: `${m.name}/${action}` });
  }
}
// Input validators are looked up by the schema's JSON text (a user connector may reuse a name).
const index = `\nexports.inputsByJson = {${inputs.map((i) => `${JSON.stringify(i.json)}: exports.${i.key}`).join(',')}};\n`;
writeFileSync(path.join(out, 'user-validators.cjs'), standaloneCode(userAjv, userRefs) + index);
console.log(`wrote ${path.relative(root, path.join(out, 'user-validators.cjs'))} (meta-schema, ${inputs.map((i) => i.name).join(', ')})`);
