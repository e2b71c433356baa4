import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { Service } from "../../src/core/service.js";
import type { HostRecord } from "../../src/core/types.js";
import { Placer } from "../../src/cluster/placer.js";
import { FsObjectStore } from "../../src/storage/index.js";
import { freshDatabase } from "../helpers/backends.js";
import { tempDir } from "../helpers/server.js";

// Hosts dedicated to one variant (KIKITORI_SERVES; on Kubernetes, the pods of the variant's worker
// Deployment, scaled by KEDA): the variant runs one instance per slot of them, on them only, and follows them
// as they come and go. The leader's placer over a real store; no instance is started (no worker here).
test("dedicated hosts: the variant's desired count follows their slots and its instances go only to them", async () => {
  const db = await freshDatabase("sqlite");
  const stores = await db.open();
  try {
    const objects = new FsObjectStore({ root: join(tempDir("kk-dedicated-"), "objects") });
    const service = new Service(stores.state, objects, {
      maxInputBytes: 1 << 20,
      maxAttempts: 2,
      defaultBucket: "kikitori",
    });
    await service.createModel({ name: "m", image: "kikitori/whisper", environment: {} });
    await service.createEndpointConfig({
      name: "c",
      variants: [{ modelName: "m", initialInstanceCount: 1 }],
      asyncConfig: {},
    });
    await service.createEndpoint({ name: "whisper", configName: "c" });
    // KEDA is the autoscaler: kikitori's own count is set to 0, so only the pods count.
    await service.setDesiredCount("whisper", "AllTraffic", 0);

    const now = Date.now();
    const host = (id: string, over: Partial<HostRecord> = {}): HostRecord => ({
      id,
      name: id,
      slots: 1,
      cpus: 2,
      gpus: 0,
      models: [],
      state: "Ready",
      startedAt: now,
      heartbeatAt: now,
      ...over,
    });
    const desired = async () =>
      (await service.desiredCounts((await service.findEndpoint("whisper"))!)).get("AllTraffic");
    const placer = new Placer(service, { intervalMs: 1000, hostTtlMs: 60_000, log: () => {} });
    const placedOn = async () =>
      (await service.listPlacements({ endpoint: "whisper" })).map((p) => p.host).sort();

    await service.upsertHost(host("general", { slots: 8 }));
    assert.equal(await desired(), 0, "no pod: nothing to run");
    await placer.pass(now);
    assert.deepEqual(await placedOn(), []);

    // KEDA starts two pods: two instances, one on each, none on the general host.
    await service.upsertHost(host("pod-a", { serves: "whisper/AllTraffic" }));
    await service.upsertHost(host("pod-b", { serves: "whisper/AllTraffic" }));
    await service.upsertHost(host("pod-other", { serves: "other/AllTraffic" }));
    assert.equal(await desired(), 2);
    await placer.pass(now);
    assert.deepEqual(await placedOn(), ["pod-a", "pod-b"]);
    const described = await service.variantCounts("whisper");
    assert.equal(described.get("AllTraffic")?.desired, 2, "DescribeEndpoint's DesiredInstanceCount");

    // Scale-in: one pod drains (SIGTERM); its instance goes, and is not moved to the general host.
    await service.upsertHost(host("pod-b", { serves: "whisper/AllTraffic", state: "Draining" }));
    assert.equal(await desired(), 1);
    await placer.pass(now);
    assert.deepEqual(await placedOn(), ["pod-a"]);

    // The stored count still counts where it is larger (an operator asking for more than the pods).
    await service.setDesiredCount("whisper", "AllTraffic", 3);
    assert.equal(await desired(), 3);
    await placer.pass(now);
    assert.deepEqual(await placedOn(), ["general", "general", "pod-a"], "the rest on general hosts");
  } finally {
    await stores.close();
  }
});
