import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import pg from "pg";
import { loadConfig } from "../../src/config.js";
import { openBackends, type Backends } from "../../src/backends.js";
import { Service } from "../../src/core/service.js";
import { Metrics } from "../../src/metrics/metrics.js";
import { freshDatabase } from "../helpers/backends.js";
import { repoRoot } from "../helpers/server.js";

// The KEDA ScaledObject's PostgreSQL query, read from deploy/kubernetes/keda.yaml and run as it is against
// kikitori's real schema on a real PostgreSQL, beside the backlog kikitori's own metrics (and so its
// autoscaler) read through the core: they must agree while work is queued, running and ended.
const scaledObject = parseAllDocuments(readFileSync(join(repoRoot, "deploy/kubernetes/keda.yaml"), "utf8"))
  .map(
    (d) =>
      d.toJS() as { kind: string; spec: { triggers: { type: string; metadata: Record<string, string> }[] } },
  )
  .find((o) => o.kind === "ScaledObject")!;
const trigger = scaledObject.spec.triggers.find((t) => t.type === "postgresql")!;
const endpoint = /endpoint = '([^']+)'/.exec(trigger.metadata.query!)![1]!;

test("KEDA's query returns the backlog kikitori's autoscaler sees, queued and running alike", async () => {
  const fresh = await freshDatabase("postgres");
  const backends = await openBackends(loadConfig(fresh.config, {}));
  const db = new pg.Client({ connectionString: fresh.config.databaseUrl });
  await db.connect();
  try {
    await scenario(backends, db);
  } finally {
    await db.end();
    await backends.close();
  }
});

async function scenario(backends: Backends, db: pg.Client): Promise<void> {
  const service = new Service(backends.state, backends.objects, {
    maxInputBytes: 1 << 20,
    maxAttempts: 2,
    defaultBucket: "kikitori",
  });
  const metrics = new Metrics(service);
  const keda = async () => {
    const { rows } = await db.query<Record<string, string>>(trigger.metadata.query!);
    assert.equal(rows.length, 1, "one row");
    const values = Object.values(rows[0]!);
    assert.equal(values.length, 1, "one column: KEDA reads one number");
    return Number(values[0]);
  };
  const seen = async () => (await metrics.snapshot(endpoint)).ApproximateBacklogSize;

  await backends.objects.createBucket("kikitori");
  await backends.objects.putObject("kikitori", "in/a.wav", Buffer.from("audio"), {});
  await service.createModel({ name: "m", image: "kikitori/whisper", environment: {} });
  await service.createEndpointConfig({
    name: "c",
    variants: [{ modelName: "m", initialInstanceCount: 1 }],
    asyncConfig: {},
  });
  for (const name of [endpoint, "other"]) await service.createEndpoint({ name, configName: "c" });
  assert.equal(await keda(), 0);

  const invoke = (on: string) =>
    service.invokeAsync({ endpoint: on, inputLocation: "s3://kikitori/in/a.wav" });
  const mine = [];
  for (let i = 0; i < 7; i++) mine.push(await invoke(endpoint));
  for (let i = 0; i < 3; i++) await invoke("other");
  assert.equal(await keda(), 7);
  assert.equal(await seen(), 7);

  // Three leased (Running), of which one succeeds and one fails; one of the queued is cancelled.
  const running = await service.lease(endpoint, "instance-1", 3, 60_000);
  assert.equal(running.length, 3);
  await service.lease("other", "instance-2", 2, 60_000);
  await service.succeed(running[0]!, "instance-1", Buffer.from("{}"), "application/json", 1);
  await service.fail(
    running[1]!,
    { state: "Failed", error: { code: "ModelError", message: "model said no" } },
    { from: ["Running"], owner: "instance-1" },
  );
  await service.cancel(mine.at(-1)!.id);
  const backlog = await service.backlog(endpoint);
  assert.deepEqual([backlog.queued, backlog.running], [3, 1]);
  assert.equal(await keda(), 4, "queued (3) and running (1) of this endpoint only");
  assert.equal(await seen(), 4, "the same number the autoscaler's ApproximateBacklogSize reads");
  // KEDA's replicas for it: ceil(backlog / targetQueryValue), as target tracking on the per-instance backlog.
  assert.equal(Math.ceil((await keda()) / Number(trigger.metadata.targetQueryValue)), 2);

  // Everything ends: nothing left, KEDA scales the workers to zero (activation above 0 only).
  await service.succeed(running[2]!, "instance-1", Buffer.from("{}"), "application/json", 1);
  for (const inv of await service.lease(endpoint, "instance-1", 10, 60_000))
    await service.succeed(inv, "instance-1", Buffer.from("{}"), "application/json", 1);
  assert.equal(await keda(), 0);
  assert.equal(await seen(), 0);
  assert.ok((await keda()) <= Number(trigger.metadata.activationTargetQueryValue), "not active at zero");
}
