import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { Service } from "../../src/core/service.js";
import { SqliteStateStore } from "../../src/queue/sqlite/store.js";
import { FsObjectStore } from "../../src/storage/index.js";
import { InstanceManager } from "../../src/instances/manager.js";
import { ModelDataCache } from "../../src/instances/model-data.js";
import { Placer } from "../../src/cluster/placer.js";
import { noopModelServer, tempDir, waitFor } from "../helpers/server.js";

// The instance manager over a real store and real model-server processes, with a short health-check
// interval (the server's default is 5 s) so a hung model server is found in about a second; one host,
// and the leader's placer placing the variant's desired instances on it.
async function setup() {
  const dir = tempDir("kk-life-");
  const state = new SqliteStateStore(join(dir, "kikitori.db"));
  const objects = new FsObjectStore({ root: join(dir, "objects") });
  const service = new Service(state, objects, {
    maxInputBytes: 1 << 20,
    maxAttempts: 3,
    defaultBucket: "kikitori",
  });
  await objects.createBucket("kikitori");
  const manager = new InstanceManager(service, new ModelDataCache(join(dir, "cache"), objects), {
    leaseMs: 30_000,
    heartbeatMs: 500,
    startupHealthTimeoutMs: 5000,
    shutdownGraceMs: 500,
    healthCheckIntervalMs: 200,
    maxConsecutiveStartFailures: 3,
    defaultModelFile: () => "",
    // The fixture's model server is a local command: allowed here, as an operator would.
    localImages: { allowAll: false, commands: [noopModelServer] },
    hostId: "h1",
    log: () => {},
  });
  const now = Date.now();
  await service.upsertHost({
    id: "h1",
    name: "h1",
    slots: 4,
    cpus: 2,
    gpus: 0,
    models: [],
    state: "Ready",
    startedAt: now,
    heartbeatAt: now + 3_600_000,
  });
  const placer = new Placer(service, { intervalMs: 200, hostTtlMs: 10_000, log: () => {} });
  await service.createModel({
    name: "m",
    image: `local:${noopModelServer}`,
    environment: { NOOP_DELAY_MS: "1500" },
  });
  await service.createEndpointConfig({
    name: "m",
    variants: [{ modelName: "m", initialInstanceCount: 1 }],
    asyncConfig: {},
  });
  await service.createEndpoint({ name: "m", configName: "m" });
  await manager.start();
  placer.start();
  return {
    service,
    manager,
    close: async () => {
      await placer.stop();
      await manager.stop();
      await state.close();
    },
  };
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test("a hung model server fails its health checks, is killed and replaced, and its work is retried", async () => {
  const { service, manager, close } = await setup();
  try {
    await waitFor(() => manager.instancesOf("m").some((i) => i.state === "InService"), 10_000, "InService");
    const victim = manager.instancesOf("m")[0]!;
    await service.objects.putObject("kikitori", "in.bin", Buffer.from("abc"));
    const inv = await service.invokeAsync({ endpoint: "m", inputLocation: "s3://kikitori/in.bin" });
    await waitFor(async () => (await service.getInvocation(inv.id))?.state === "Running", 5000, "Running");
    process.kill(victim.pid!, "SIGSTOP"); // still running, but answers nothing: only a health check can tell
    await waitFor(() => victim.state === "Failed", 5000, "victim Failed");
    assert.match(victim.reason!, /failed 3 health checks in a row \(GET \/ping answered nothing\)/);
    await waitFor(() => !alive(victim.pid!), 5000, "hung process killed (SIGKILL after the grace period)");
    await waitFor(
      () => manager.instancesOf("m").some((i) => i !== victim && i.state === "InService"),
      10_000,
      "replacement InService",
    );
    await waitFor(
      async () => (await service.getInvocation(inv.id))?.state === "Succeeded",
      15_000,
      "retried and Succeeded",
    );
    assert.equal((await service.getInvocation(inv.id))!.attempts, 2);
    const records = await service.listInstances({ endpoint: "m" });
    assert.equal(records.find((r) => r.id === victim.id)?.state, "Failed");
  } finally {
    await close();
  }
});

test("scale-in drains: the in-flight invocation finishes, then SIGTERM and Terminated", async () => {
  const { service, manager, close } = await setup();
  try {
    await waitFor(() => manager.instancesOf("m").some((i) => i.state === "InService"), 10_000, "InService");
    const inst = manager.instancesOf("m")[0]!;
    await service.objects.putObject("kikitori", "in.bin", Buffer.from("abc"));
    const inv = await service.invokeAsync({ endpoint: "m", inputLocation: "s3://kikitori/in.bin" });
    await waitFor(async () => (await service.getInvocation(inv.id))?.state === "Running", 5000, "Running");
    await service.setDesiredCount("m", "AllTraffic", 0);
    await waitFor(() => inst.state === "Draining", 2000, "Draining");
    // shutdownGraceMs is 500 ms and the invocation takes 1.5 s: it is handed back, not lost.
    await waitFor(() => inst.state === "Terminated", 5000, "Terminated");
    assert.ok(!alive(inst.pid!), "process gone");
    const cur = (await service.getInvocation(inv.id))!;
    assert.equal(cur.state, "Queued", "handed back to the queue");
    await service.setDesiredCount("m", "AllTraffic", 1);
    await waitFor(
      async () => (await service.getInvocation(inv.id))?.state === "Succeeded",
      15_000,
      "done on a new instance",
    );
  } finally {
    await close();
  }
});
