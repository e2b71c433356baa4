import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Service } from "kubernetes-models/v1/Service";
import { Deployment, type IDeployment } from "kubernetes-models/apps/v1/Deployment";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { ScaledObject, type IScaledObject } from "@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject";
import { TriggerAuthentication } from "@kubernetes-models/keda/keda.sh/v1alpha1/TriggerAuthentication";
import { loadConfig } from "../../src/config.js";
import { INVOCATION_TIMEOUT_SECONDS } from "../../src/core/rules.js";
import { repoRoot } from "../helpers/server.js";

// The Kubernetes manifests (deploy/kubernetes): each object is validated against the Kubernetes and KEDA
// OpenAPI schemas bundled in kubernetes-models / @kubernetes-models/keda (there is no cluster here), and the
// fields the deployment relies on are checked against each other and against kikitori's own configuration
// loader. Building the image needs a container daemon with a registry: not here (see test/image).
const dir = join(repoRoot, "deploy", "kubernetes");
const docs = (file: string) =>
  parseAllDocuments(readFileSync(join(dir, file), "utf8")).map((d) => {
    assert.deepEqual(d.errors, [], `${file}: YAML errors`);
    return d.toJS() as { apiVersion: string; kind: string; metadata: { name: string } };
  });

const MODELS = {
  "v1/ConfigMap": ConfigMap,
  "v1/Service": Service,
  "apps/v1/Deployment": Deployment,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
  "keda.sh/v1alpha1/ScaledObject": ScaledObject,
  "keda.sh/v1alpha1/TriggerAuthentication": TriggerAuthentication,
} as const;

const kustomization = docs("kustomization.yaml")[0] as unknown as { resources: string[] };
const objects = kustomization.resources.flatMap(docs);
const find = <T>(kind: string, name: string): T => {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  assert.ok(o, `${kind} ${name} is in the manifests`);
  return o as T;
};
const api = find<IDeployment>("Deployment", "kikitori-api");
const worker = find<IDeployment>("Deployment", "kikitori-worker-whisper");
const scaled = find<IScaledObject>("ScaledObject", "kikitori-worker-whisper");
const configMap = find<{ data: Record<string, string> }>("ConfigMap", "kikitori");

test("manifests: every object validates against its bundled Kubernetes or KEDA schema", () => {
  assert.ok(objects.length >= 8, `${objects.length} objects`);
  for (const o of objects) {
    const Model = MODELS[`${o.apiVersion}/${o.kind}` as keyof typeof MODELS];
    assert.ok(Model, `${o.apiVersion} ${o.kind} (${o.metadata.name}) has a schema here`);
    assert.doesNotThrow(() => new Model(o as never).validate(), `${o.kind} ${o.metadata.name}`);
  }
  // The validator is not a formality: a wrong type is refused.
  const broken = structuredClone(worker);
  (broken.spec!.template.spec!.containers[0]!.ports![0] as { containerPort: unknown }).containerPort = "7601";
  assert.throws(() => new Deployment(broken).validate(), /containerPort must be integer/);
});

/** The environment a pod's container starts with: its ConfigMap, its env (secrets as placeholders). */
function podEnv(d: IDeployment, podIp = "10.1.2.3"): Record<string, string> {
  const c = d.spec!.template.spec!.containers[0]!;
  const env: Record<string, string> = {};
  for (const from of c.envFrom ?? []) {
    assert.equal(from.configMapRef?.name, "kikitori", "envFrom names the kikitori ConfigMap");
    Object.assign(env, configMap.data);
  }
  for (const e of c.env ?? []) {
    if (e.valueFrom?.fieldRef) env[e.name] = e.valueFrom.fieldRef.fieldPath === "status.podIP" ? podIp : "?";
    else if (e.valueFrom?.secretKeyRef) {
      assert.equal(e.valueFrom.secretKeyRef.name, "kikitori", `${e.name} comes from the Secret kikitori`);
      env[e.name] =
        e.valueFrom.secretKeyRef.key === "database-url"
          ? "postgres://kikitori:pw@db:5432/kikitori"
          : `secret-${e.valueFrom.secretKeyRef.key}`;
    } else env[e.name] = (e.value ?? "").replace(/\$\((\w+)\)/g, (_, n: string) => env[n] ?? "");
  }
  return env;
}

/** The role the container's args give (`kikitori worker`, `kikitori serve --role <role>`). */
function roleOf(d: IDeployment): "worker" | "api" | "all" {
  const args = d.spec!.template.spec!.containers[0]!.args ?? [];
  if (args[0] === "worker" && args.length === 1) return "worker";
  assert.equal(args[0], "serve");
  const i = args.indexOf("--role");
  return i < 0 ? "all" : (args[i + 1] as "api");
}

test("manifests: the pods' settings load through kikitori's own configuration (roles, ports, secrets)", () => {
  const w = loadConfig({ role: roleOf(worker) }, podEnv(worker));
  assert.equal(w.role, "worker", "the image's entrypoint is `kikitori`; args: worker");
  assert.deepEqual(worker.spec!.template.spec!.containers[0]!.args, ["worker"]);
  assert.equal(w.serves, "whisper/AllTraffic");
  assert.equal(w.instanceSlots, 1, "one instance per pod: replicas are instances");
  assert.equal(w.databaseUrl, "postgres://kikitori:pw@db:5432/kikitori");
  assert.equal(w.host, "0.0.0.0");
  assert.equal(w.advertiseUrl, `http://10.1.2.3:${w.port}`, "API pods reach the pod at its own IP");
  const workerPort = worker.spec!.template.spec!.containers[0]!.ports![0]!;
  assert.equal(workerPort.containerPort, w.port);

  const a = loadConfig({ role: roleOf(api) }, podEnv(api));
  assert.equal(a.role, "api");
  assert.deepEqual(api.spec!.template.spec!.containers[0]!.args, ["serve", "--role", "api"]);
  assert.equal(a.databaseUrl, w.databaseUrl, "one database for every pod");
  assert.equal(a.auth.credentials.length, 1, "the API is not open: SigV4 credentials from the Secret");
  assert.equal(api.spec!.template.spec!.containers[0]!.ports![0]!.containerPort, a.port);
  for (const c of [a, w]) {
    assert.equal(c.objectStore.kind, "s3", "objects every pod can read");
    assert.ok(c.hostTtlMs > c.hostHeartbeatMs);
  }
});

test("manifests: the worker's weights are pulled into the volume the worker reads them from", () => {
  const spec = worker.spec!.template.spec!;
  const init = spec.initContainers?.[0];
  assert.deepEqual(init?.args?.slice(0, 2), ["models", "pull"]);
  assert.equal(init?.image, spec.containers[0]!.image, "the same image");
  const mount = (c: { volumeMounts?: { name: string; mountPath: string }[] }) => c.volumeMounts?.[0];
  assert.deepEqual(mount(init), mount(spec.containers[0]!));
  assert.ok(spec.volumes?.some((v) => v.name === mount(init)!.name));
  // The image keeps models under its data directory (Dockerfile: KIKITORI_MODELS=/var/lib/kikitori/models).
  assert.match(
    readFileSync(join(repoRoot, "Dockerfile"), "utf8"),
    /KIKITORI_MODELS=\/var\/lib\/kikitori\/models/,
  );
  assert.ok(`${mount(init)!.mountPath}/models`.startsWith("/var/lib/kikitori"));
});

test("manifests: probes, selectors and names line up", () => {
  for (const d of [api, worker]) {
    const pod = d.spec!.template;
    const c = pod.spec!.containers[0]!;
    const ports = new Set((c.ports ?? []).map((p) => p.name));
    for (const probe of [c.readinessProbe, c.livenessProbe]) {
      assert.equal(probe?.httpGet?.path, "/health", `${d.metadata!.name}: probes /health`);
      assert.ok(ports.has(String(probe.httpGet.port)), `${d.metadata!.name}: probe port is declared`);
    }
    for (const [k, v] of Object.entries(d.spec!.selector.matchLabels ?? {}))
      assert.equal(pod.metadata!.labels![k], v, `${d.metadata!.name}: selector matches its pods`);
  }
  const selects = (sel: Record<string, string> | undefined, d: IDeployment) =>
    Object.entries(sel ?? {}).every(([k, v]) => d.spec!.template.metadata!.labels![k] === v);
  const svc = find<{ spec: { selector: Record<string, string> } }>("Service", "kikitori");
  assert.ok(
    selects(svc.spec.selector, api) && !selects(svc.spec.selector, worker),
    "the Service is the API's",
  );
  const pdbApi = find<{ spec: { selector: { matchLabels: Record<string, string> } } }>(
    "PodDisruptionBudget",
    "kikitori-api",
  );
  assert.ok(
    selects(pdbApi.spec.selector.matchLabels, api) && !selects(pdbApi.spec.selector.matchLabels, worker),
  );
  const pdbWorker = find<{ spec: { selector: { matchLabels: Record<string, string> } } }>(
    "PodDisruptionBudget",
    "kikitori-worker-whisper",
  );
  assert.ok(selects(pdbWorker.spec.selector.matchLabels, worker));
  assert.ok(!selects(pdbWorker.spec.selector.matchLabels, api));
});

test("manifests: scale-in drains (termination grace covers the invocation timeout), KEDA owns the replicas", () => {
  const w = loadConfig({ role: roleOf(worker) }, podEnv(worker));
  const graceS = worker.spec!.template.spec!.terminationGracePeriodSeconds!;
  assert.ok(
    w.shutdownGraceMs >= INVOCATION_TIMEOUT_SECONDS.default * 1000,
    `the worker's drain (${w.shutdownGraceMs} ms) waits for an invocation of the default timeout`,
  );
  assert.ok(graceS * 1000 > w.shutdownGraceMs, "Kubernetes waits longer than the worker drains");
  assert.equal(worker.spec!.replicas, undefined, "no replica count to fight KEDA over");
  assert.equal(scaled.spec!.scaleTargetRef.name, worker.metadata!.name);
  assert.equal(scaled.spec!.minReplicaCount, 0, "to zero");
  assert.ok((scaled.spec!.maxReplicaCount ?? 0) >= 1);
  const [trigger] = scaled.spec!.triggers;
  assert.equal(trigger!.type, "postgresql");
  assert.equal(
    trigger!.metadata.activationTargetQueryValue,
    "0",
    "from zero at the first waiting invocation",
  );
  assert.ok(Number(trigger!.metadata.targetQueryValue) > 0);
  // The query counts the variant's endpoint, the one the worker pods serve.
  const endpoint = /endpoint = '([^']+)'/.exec(trigger!.metadata.query!)?.[1];
  assert.equal(`${endpoint}/AllTraffic`, w.serves);
  // Its connection: the TriggerAuthentication reads the same Secret key as the pods' KIKITORI_DATABASE_URL.
  const auth = find<{ spec: { secretTargetRef: { parameter: string; name: string; key: string }[] } }>(
    "TriggerAuthentication",
    trigger!.authenticationRef!.name,
  );
  assert.deepEqual(auth.spec.secretTargetRef, [
    { parameter: "connection", name: "kikitori", key: "database-url" },
  ]);
});

test("manifests: the GPU overlay patches paths that exist in the worker Deployment", () => {
  const overlay = docs("gpu/kustomization.yaml")[0] as unknown as {
    resources: string[];
    patches: { target: { kind: string; name: string }; patch: string }[];
  };
  assert.deepEqual(overlay.resources, [".."]);
  for (const p of overlay.patches) {
    const target = find<IDeployment>(p.target.kind, p.target.name);
    const ops = parseAllDocuments(p.patch)[0]!.toJS() as { op: string; path: string; value: unknown }[];
    for (const op of ops) {
      assert.equal(op.op, "add");
      // JSON Pointer: every parent exists; "-" appends to an array.
      const parts = op.path.split("/").slice(1);
      let at: unknown = target;
      for (const part of parts.slice(0, -1)) at = (at as Record<string, unknown>)[part];
      assert.ok(at && typeof at === "object", `${op.path}: the parent exists`);
      if (parts.at(-1) === "-") assert.ok(Array.isArray(at), `${op.path}: appends to an array`);
    }
    assert.ok(p.patch.includes("KIKITORI_GPU"), "the CUDA build is told to use the GPU");
  }
  assert.ok(existsSync(join(repoRoot, "Dockerfile")));
  assert.match(
    readFileSync(join(repoRoot, "Dockerfile"), "utf8"),
    /ARG GPU=0/,
    "the image has a CUDA variant",
  );
});
