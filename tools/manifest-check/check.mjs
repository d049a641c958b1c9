// Validates Kubernetes manifests against the API's schemas (kubernetes-models' validators, generated from the
// Kubernetes OpenAPI) and NetworkAttachmentDefinitions against Multus's CRD schema.
//   node check.mjs PATH...            every *.yaml under PATH; prints one line per object, exits 1 on any problem
//   node check.mjs --configs PATH...  the same, then the NADs' embedded CNI configurations as a JSON array
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments, parse } from "yaml";
import Ajv from "ajv";
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
const configs = [];
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
      if (!printConfigs) console.log(`${what}: valid`);
    } catch (e) {
      problems++;
      console.error(`${what}: ${e.message}`);
    }
  }
}
if (objects === 0) {
  console.error("no Kubernetes objects found");
  problems++;
}
if (printConfigs && problems === 0) console.log(JSON.stringify(configs));
if (!printConfigs) console.log(`${objects} objects, ${problems} problems`);
process.exit(problems === 0 ? 0 : 1);
