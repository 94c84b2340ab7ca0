// Validates Kubernetes manifests against the schemas of a pinned Kubernetes version, as
// kubeconform's strict mode would (kubeconform is not packaged by Debian or npm):
//   1. each document against the OpenAPI schema of its kind, compiled to a validator by the npm
//      package kubernetes-models (@kubernetes-models/prometheus-operator for PodMonitor):
//      types, required fields, formats (quantities, int-or-string), enums;
//   2. unknown fields, which those validators let through: every document is type-checked by
//      the TypeScript compiler as an object literal of the kind's interface from the same
//      packages, where a field the kind does not have is an error (TS2353) at any depth.
//
//     node validate.mjs NODE_MODULES FILE.yaml...
//
// Prints one JSON object: {"documents": [{"file", "index", "doc"}], "errors": ["..."]}; exits 1
// when there are errors. Run by tests/deploy/test_kubernetes.py, which pins the packages.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const [modules, ...files] = process.argv.slice(2);
const req = createRequire(path.join(modules, "index.js"));
const YAML = req("yaml");
const ts = req("typescript");

// apiVersion/kind -> the module of its model, relative to node_modules.
function modelPath(apiVersion, kind) {
    if (apiVersion === "monitoring.coreos.com/v1")
        return `@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/${kind}.js`;
    const group = apiVersion.includes("/") ? apiVersion : `core/${apiVersion}`;
    const [g, v] = group.split("/");
    return g === "core" ? `kubernetes-models/${v}/${kind}.js`
        : `kubernetes-models/${g}/${v}/${kind}.js`;
}

const documents = [];
const errors = [];
const typed = [];
for (const file of files) {
    const text = fs.readFileSync(file, "utf8");
    const docs = YAML.parseAllDocuments(text, { uniqueKeys: true, strict: true });
    docs.forEach((d, index) => {
        const where = `${path.basename(file)}#${index}`;
        for (const e of [...d.errors, ...d.warnings]) errors.push(`${where}: YAML: ${e.message}`);
        const doc = d.toJS();
        if (doc === null || doc === undefined) return;
        documents.push({ file: path.basename(file), index, doc });
        if (typeof doc !== "object" || !doc.apiVersion || !doc.kind) {
            errors.push(`${where}: no apiVersion and kind`);
            return;
        }
        const mod = modelPath(doc.apiVersion, doc.kind);
        if (!fs.existsSync(path.join(modules, mod))) {
            errors.push(`${where}: no schema for ${doc.apiVersion} ${doc.kind}`);
            return;
        }
        typed.push({ where, mod, doc });
    });
}

// 1. The compiled OpenAPI schemas.
for (const t of typed) {
    const m = await import(pathToFileURL(path.join(modules, t.mod)).href);
    const Model = m[t.doc.kind];
    try {
        new Model(t.doc).validate();
    } catch (e) {
        errors.push(`${t.where}: ${t.doc.kind} ${t.doc.metadata?.name}: schema: ${e.message}`);
    }
}

// 2. Unknown fields: one TypeScript file, one typed constant per document.
if (typed.length) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pymemd-k8s-"));
    try {
        const src = path.join(dir, "manifests.mts");
        const lines = [];
        typed.forEach((t, i) => {
            const spec = path.join(modules, t.mod);
            lines.push(`import type { I${t.doc.kind} as T${i} } from ${JSON.stringify(spec)};`);
        });
        typed.forEach((t, i) => {
            lines.push(`// ${t.where}`);
            lines.push(`export const d${i}: T${i} = ${JSON.stringify(t.doc)};`);
        });
        fs.writeFileSync(src, lines.join("\n") + "\n");
        const program = ts.createProgram([src], {
            noEmit: true, strict: true, skipLibCheck: true, target: ts.ScriptTarget.ES2022,
            module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext,
            types: [],
        });
        for (const d of ts.getPreEmitDiagnostics(program)) {
            const msg = ts.flattenDiagnosticMessageText(d.messageText, " ");
            let where = "";
            if (d.file && d.start !== undefined) {
                const { line } = d.file.getLineAndCharacterOfPosition(d.start);
                const i = Math.floor((line - typed.length) / 2);
                const t = typed[i];
                where = t ? `${t.where}: ${t.doc.kind} ${t.doc.metadata?.name}: ` : "";
            }
            errors.push(`${where}fields: TS${d.code}: ${msg}`);
        }
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

process.stdout.write(JSON.stringify({ documents, errors }) + "\n");
process.exit(errors.length ? 1 : 0);
