#!/usr/bin/env node
// Generates dist/core/generated/validators.cjs: ajv "standalone" validation code for the
// shipped schemas, so `alloy validate` does not compile schemas at run time. The options
// must match getAjv() in src/core/schema-check.ts (strict, allErrors, verbose).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
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
