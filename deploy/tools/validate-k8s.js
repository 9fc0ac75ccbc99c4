#!/usr/bin/env node
// Offline validation of rendered Kubernetes manifests (multi-document YAML files given as
// arguments) against the Kubernetes OpenAPI schemas shipped in the `kubernetes-models` and
// `@kubernetes-models/prometheus-operator` npm packages:
//   1. schema: each object goes through the package's JSON-schema validator (types,
//      required fields, enums, formats such as int32 and quantities);
//   2. strict: each object is type-checked by the TypeScript compiler against the package's
//      interfaces, whose excess-property check rejects unknown fields (a misspelt
//      `terminationGracePeriodSecond` passes JSON-schema validation but fails here).
// Kinds with no schema are an error. Exit 0 when everything is valid.
// Usage: node validate-k8s.js FILE.yaml...   (run from deploy/.tools, see check-deploy.sh)
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const YAML = require('yaml');

function modulePath(apiVersion, kind) {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  if (group === 'monitoring.coreos.com') {
    return `@kubernetes-models/prometheus-operator/${group}/${version}/${kind}`;
  }
  return group ? `kubernetes-models/${group}/${version}/${kind}` : `kubernetes-models/${version}/${kind}`;
}

const objects = [];
let failures = 0;
for (const file of process.argv.slice(2)) {
  const docs = YAML.parseAllDocuments(fs.readFileSync(file, 'utf8'));
  for (const doc of docs) {
    if (doc.errors.length) {
      console.error(`${file}: YAML error: ${doc.errors[0].message}`);
      failures++;
      continue;
    }
    const obj = doc.toJS();
    if (obj === null || obj === undefined) continue;
    const where = `${file}: ${obj.kind}/${obj.metadata && obj.metadata.name}`;
    if (!obj.apiVersion || !obj.kind) {
      console.error(`${where}: missing apiVersion or kind`);
      failures++;
      continue;
    }
    const mod = modulePath(obj.apiVersion, obj.kind);
    let Model;
    try {
      Model = require(mod)[obj.kind];
    } catch (e) {
      Model = undefined;
    }
    if (!Model) {
      console.error(`${where}: no schema for ${obj.apiVersion} ${obj.kind}`);
      failures++;
      continue;
    }
    try {
      new Model(obj).validate();
    } catch (e) {
      console.error(`${where}: schema: ${e.message}`);
      failures++;
    }
    objects.push({ where, mod, kind: obj.kind, obj });
  }
}

// Strict pass: one TypeScript file with a typed constant per object.
if (objects.length) {
  const ts = require('typescript');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kitty-k8s-'));
  const lines = [];
  objects.forEach((o, i) => {
    lines.push(`import type { I${o.kind} as T${i} } from ${JSON.stringify(o.mod)};`);
  });
  const firstLine = lines.length + 1;
  const starts = [];
  let line = firstLine;
  objects.forEach((o, i) => {
    const body = `export const o${i}: T${i} = ${JSON.stringify(o.obj, null, 1)};`;
    starts.push(line);
    line += body.split('\n').length;
    lines.push(body);
  });
  const file = path.join(dir, 'objects.ts');
  fs.writeFileSync(file, lines.join('\n') + '\n');
  const program = ts.createProgram([file], {
    noEmit: true, strict: true, skipLibCheck: true, types: [],
    module: ts.ModuleKind.CommonJS, moduleResolution: ts.ModuleResolutionKind.Node10,
    target: ts.ScriptTarget.ES2020, baseUrl: process.cwd(),
    typeRoots: [], paths: { '*': [path.join(process.cwd(), 'node_modules', '*')] },
  });
  for (const d of ts.getPreEmitDiagnostics(program)) {
    const msg = ts.flattenDiagnosticMessageText(d.messageText, '\n  ');
    let where = 'objects.ts';
    if (d.file && d.start !== undefined) {
      const ln = d.file.getLineAndCharacterOfPosition(d.start).line + 1;
      let idx = starts.findIndex((s, i) => ln >= s && (i + 1 === starts.length || ln < starts[i + 1]));
      const text = d.file.text.split('\n')[ln - 1].trim();
      where = idx >= 0 ? `${objects[idx].where} (near \`${text}\`)` : `objects.ts:${ln}`;
    }
    console.error(`${where}: strict: ${msg}`);
    failures++;
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

console.log(`validate-k8s: ${objects.length} objects checked, ${failures} problem(s)`);
process.exit(failures ? 1 : 0);
