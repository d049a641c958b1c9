// Validates Kubernetes manifests against the API's schemas (kubernetes-models' validators, generated from the
// Kubernetes OpenAPI) and NetworkAttachmentDefinitions against Multus's CRD schema. Those validators let unknown
// fields through (a misspelt securityContext would vanish in silence), which an API server in strict field
// validation refuses: so each object is also type-checked against kubernetes-models' TypeScript interfaces, whose
// excess-property check names every unknown field.
//   node check.mjs PATH...            every *.yaml under PATH; prints one line per object, exits 1 on any problem
//   node check.mjs --configs PATH...  the same, then the NADs' embedded CNI configurations as a JSON array
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments, parse } from "yaml";
import Ajv from "ajv";
import ts from "typescript";
import { ObjectMeta } from "@kubernetes-models/apimachinery/apis/meta/v1/ObjectMeta";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Namespace } from "kubernetes-models/v1/Namespace";
import { ServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import { DaemonSet } from "kubernetes-models/apps/v1/DaemonSet";

const here = new URL(".", import.meta.url).pathname;
const crd = parse(readFileSync(join(here, "network-attachment-definition-crd.yaml"), "utf8"));
const nadVersion = crd.spec.versions.find((v) => v.name === "v1");
// Structural CRD schemas carry Kubernetes keywords (x-kubernetes-*) that are not JSON Schema.
const validateNad = new Ajv({ strict: false, allErrors: true }).compile(nadVersion.schema.openAPIV3Schema);

const models = {
  "v1/ConfigMap": ConfigMap,
  "v1/Namespace": Namespace,
  "v1/ServiceAccount": ServiceAccount,
  "apps/v1/DaemonSet": DaemonSet,
};
// The interface of each kind, for the strict field check; the NAD's mirrors the CRD schema above.
const interfaces = {
  "v1/ConfigMap": ["IConfigMap", "kubernetes-models/v1/ConfigMap"],
  "v1/Namespace": ["INamespace", "kubernetes-models/v1/Namespace"],
  "v1/ServiceAccount": ["IServiceAccount", "kubernetes-models/v1/ServiceAccount"],
  "apps/v1/DaemonSet": ["IDaemonSet", "kubernetes-models/apps/v1/DaemonSet"],
  "k8s.cni.cncf.io/v1/NetworkAttachmentDefinition": ["INetworkAttachmentDefinition", null],
};
const nadInterface = `interface INetworkAttachmentDefinition {
  apiVersion: "k8s.cni.cncf.io/v1"; kind: "NetworkAttachmentDefinition";
  metadata: import("@kubernetes-models/apimachinery/apis/meta/v1/ObjectMeta").IObjectMeta;
  spec?: { config?: string };
}`;

// Type-checks the objects (each on a line of its own) in one in-memory program; returns a problem per object index.
function unknownFields(objects) {
  const file = join(here, "__manifests__.ts");
  const imports = new Set(), lines = [];
  objects.forEach((object) => {
    const [name, module] = interfaces[`${object.apiVersion}/${object.kind}`];
    if (module) imports.add(`import type { ${name} } from "${module}";`);
    lines.push(`export const o${lines.length}: ${name} = ${JSON.stringify(object)};`);
  });
  const header = [...imports, nadInterface.replace(/\n/g, " ")];
  const source = [...header, ...lines].join("\n");
  const options = { strict: true, noEmit: true, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022, skipLibCheck: true, types: [] };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host), fileExists = host.fileExists.bind(host), readFile = host.readFile.bind(host);
  host.getSourceFile = (name, version) => name === file ? ts.createSourceFile(name, source, version) : getSourceFile(name, version);
  host.fileExists = (name) => name === file || fileExists(name);
  host.readFile = (name) => name === file ? source : readFile(name);
  const program = ts.createProgram([file], options, host);
  const problems = new Map();
  for (const d of ts.getPreEmitDiagnostics(program)) {
    if (d.file?.fileName !== file) throw new Error(ts.flattenDiagnosticMessageText(d.messageText, " "));
    const index = d.file.getLineAndCharacterOfPosition(d.start).line - header.length;
    const message = ts.flattenDiagnosticMessageText(d.messageText, " ");
    problems.set(index, [...(problems.get(index) ?? []), message]);
  }
  return problems;
}

function check(object) {
  const key = `${object.apiVersion}/${object.kind}`;
  if (key === `${crd.spec.group}/v1/${crd.spec.names.kind}`) {
    if (!validateNad(object))
      throw new Error(validateNad.errors.map((e) => `${e.instancePath || "/"} ${e.message}`).join("; "));
    new ObjectMeta(object.metadata).validate();
    if (!object.metadata?.name) throw new Error("/metadata/name is required");
    if (typeof object.spec?.config !== "string") throw new Error("/spec/config must be a string of CNI configuration JSON");
    const config = JSON.parse(object.spec.config); // throws on broken JSON
    if (typeof config !== "object" || config === null || Array.isArray(config))
      throw new Error("/spec/config must be a JSON object");
    return config;
  }
  const Model = models[key];
  if (!Model) throw new Error(`${key}: not a kind this checker knows (add its kubernetes-models class)`);
  new Model(object).validate();
  return null;
}

function yamlFiles(path) {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path).sort().flatMap((name) => yamlFiles(join(path, name)))
    .filter((file) => file.endsWith(".yaml") || file.endsWith(".yml"));
}

const args = process.argv.slice(2);
const printConfigs = args[0] === "--configs";
const paths = printConfigs ? args.slice(1) : args;
if (paths.length === 0) {
  console.error("usage: node check.mjs [--configs] PATH...");
  process.exit(2);
}

let problems = 0, objects = 0;
const configs = [], checked = [];
for (const file of paths.flatMap(yamlFiles)) {
  const documents = parseAllDocuments(readFileSync(file, "utf8"));
  for (const document of documents) {
    if (document.errors.length > 0) {
      problems++;
      console.error(`${file}: YAML: ${document.errors.map((e) => e.message).join("; ")}`);
      continue;
    }
    const object = document.toJS();
    if (object === null) continue; // an empty document between separators
    objects++;
    const what = `${file}: ${object.kind ?? "?"} ${object.metadata?.namespace ? object.metadata.namespace + "/" : ""}${object.metadata?.name ?? "?"}`;
    try {
      const config = check(object);
      if (config) configs.push({ file, name: object.metadata.name, config });
      checked.push({ what, object });
    } catch (e) {
      problems++;
      console.error(`${what}: ${e.message}`);
    }
  }
}
const strict = checked.length > 0 ? unknownFields(checked.map((c) => c.object)) : new Map();
checked.forEach(({ what }, index) => {
  if (strict.has(index)) {
    problems++;
    console.error(`${what}: ${strict.get(index).join("; ")}`);
  } else if (!printConfigs) console.log(`${what}: valid`);
});
if (objects === 0) {
  console.error("no Kubernetes objects found");
  problems++;
}
if (printConfigs && problems === 0) console.log(JSON.stringify(configs));
if (!printConfigs) console.log(`${objects} objects, ${problems} problems`);
process.exit(problems === 0 ? 0 : 1);
