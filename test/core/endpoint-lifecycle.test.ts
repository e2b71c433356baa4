import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { Service } from "../../src/core/service.js";
import type { StateStore } from "../../src/queue/types.js";
import { FsObjectStore } from "../../src/storage/index.js";
import { forEachBackend, freshDatabase, type TestBackend } from "../helpers/backends.js";

/**
 * A core over real stores (no HTTP, no instances). `holdEnqueue` makes the store's enqueue wait until the
 * test lets it commit: the moment a DeleteEndpoint may slip in between a request's checks and its commit.
 */
async function core(backend: TestBackend) {
  const db = await freshDatabase(backend);
  const stores = await db.open();
  let hold: Promise<void> | undefined;
  const state = new Proxy(stores.state, {
    get(target, prop, receiver) {
      if (prop === "enqueue")
        return async (...args: Parameters<StateStore["enqueue"]>) => {
          await hold;
          return target.enqueue(...args);
        };
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  const objects = new FsObjectStore({ root: join(db.config.dataDir!, "objects"), fsync: false });
  const service = new Service(state, objects, {
    maxInputBytes: 1 << 20,
    maxAttempts: 3,
    defaultBucket: "kkb",
  });
  await objects.createBucket("kkb");
  await objects.putObject("kkb", "in.wav", Buffer.from("audio"));
  const read = async (location: string) => {
    const { body } = await objects.getObject("kkb", location.replace("s3://kkb/", ""));
    const chunks: Buffer[] = [];
    for await (const c of body) chunks.push(c as Buffer);
    return JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>;
  };
  return {
    service,
    state: stores.state,
    read,
    holdEnqueue(): () => void {
      let release!: () => void;
      hold = new Promise((r) => (release = r));
      return release;
    },
    close: async () => {
      await stores.close();
      await objects.close();
    },
  };
}

forEachBackend((backend) => {
  test(`${backend}: an endpoint keeps its own copy of config and models; an update waits in pending until promoted`, async () => {
    const c = await core(backend);
    try {
      const s = c.service;
      await s.createModel({ name: "m1", image: "local:a", environment: { V: "1" } });
      await s.createEndpointConfig({ name: "c1", variants: [{ modelName: "m1" }], asyncConfig: {} });
      const created = await s.createEndpoint({ name: "e", configName: "c1" });
      await s.deleteEndpointConfig("c1");
      await s.deleteModel("m1");
      const e = await s.getEndpoint("e");
      assert.deepEqual(e.deployment, created.deployment);
      assert.deepEqual(
        [e.deployment?.config.name, e.deployment?.models.map((m) => [m.name, m.environment])],
        ["c1", [["m1", { V: "1" }]]],
      );
      // Invocations still take the endpoint's own config (its output path), with the config gone.
      const inv = await s.invokeAsync({ endpoint: "e", inputLocation: "s3://kkb/in.wav" });
      assert.match(inv.outputLocation, /^s3:\/\/kkb\/async-output\/.+\.out$/);

      await s.createModel({ name: "m2", image: "local:b" });
      await s.createEndpointConfig({ name: "c2", variants: [{ modelName: "m2" }], asyncConfig: {} });
      // Only an InService (or Failed) endpoint may be updated.
      await assert.rejects(s.updateEndpoint("e", "c2"), /endpoint "e" is Creating/);
      await s.setEndpointStatus("e", "InService");
      const updating = await s.updateEndpoint("e", "c2");
      assert.deepEqual(
        [updating.status, updating.configName, updating.pending?.config.name],
        ["Updating", "c1", "c2"],
      );
      await assert.rejects(s.updateEndpoint("e", "c2"), /endpoint "e" is Updating/);
      assert.equal(await s.promoteDeployment("e", "not-the-pending-one"), false);
      assert.equal(await s.promoteDeployment("e", updating.pending!.id), true);
      const promoted = await s.getEndpoint("e");
      assert.deepEqual(
        [promoted.status, promoted.configName, promoted.deployment?.id, promoted.pending],
        ["InService", "c2", updating.pending!.id, undefined],
      );
      // A rollback of a deployment that is no longer pending changes nothing.
      assert.equal(await s.rollBackDeployment("e", updating.pending!.id, "late"), false);
    } finally {
      await c.close();
    }
  });

  test(`${backend}: DeleteEndpoint fails queued and running work with documents; a request that raced it fails too`, async () => {
    const c = await core(backend);
    try {
      const s = c.service;
      await s.createModel({ name: "m", image: "local:a" });
      await s.createEndpointConfig({ name: "m", variants: [{ modelName: "m" }], asyncConfig: {} });
      await s.createEndpoint({ name: "e", configName: "m" });
      const running = await s.invokeAsync({ endpoint: "e", inputLocation: "s3://kkb/in.wav" });
      const queued = await s.invokeAsync({ endpoint: "e", inputLocation: "s3://kkb/in.wav" });
      const [leased] = await s.lease("e", "w1", 1, 60_000);
      assert.equal(leased?.id, running.id);
      // A request past its checks, not yet committed, when the delete comes.
      const release = c.holdEnqueue();
      const racing = s.invokeAsync({ endpoint: "e", inputLocation: "s3://kkb/in.wav" });
      await new Promise((r) => setTimeout(r, 50));
      await s.deleteEndpoint("e");
      release();
      const raced = await racing;
      for (const id of [queued.id, running.id, raced.id]) {
        const inv = await s.getInvocation(id);
        assert.deepEqual([inv.state, inv.error?.code], ["Failed", "EndpointDeleted"], id);
        const doc = await c.read(inv.failureLocation);
        assert.deepEqual([doc.InferenceId, doc.ErrorCode], [id, "EndpointDeleted"]);
      }
      // The runner holding one learns that its lease is gone.
      assert.equal(await s.heartbeat(running.id, "w1", 60_000), "lost");
      // A new endpoint of the same name finds nothing to run.
      await s.removeDeletedEndpoint("e");
      await s.createEndpoint({ name: "e", configName: "m" });
      assert.deepEqual(await s.lease("e", "w2", 10, 60_000), []);
    } finally {
      await c.close();
    }
  });

  test(`${backend}: work of an endpoint deleted by an older kikitori is failed with documents once, never run`, async () => {
    const c = await core(backend);
    try {
      const s = c.service;
      await s.createModel({ name: "m", image: "local:a" });
      await s.createEndpointConfig({ name: "m", variants: [{ modelName: "m" }], asyncConfig: {} });
      await s.createEndpoint({ name: "e", configName: "m" });
      const left = await s.invokeAsync({ endpoint: "e", inputLocation: "s3://kkb/in.wav" });
      await c.state.deleteEndpoint("e"); // as DeleteEndpoint did before: the queue stayed behind
      await s.createEndpoint({ name: "other", configName: "m" });
      const alive = await s.invokeAsync({ endpoint: "other", inputLocation: "s3://kkb/in.wav" });
      assert.equal(await s.failStranded(), 1);
      assert.equal(await s.failStranded(), 0);
      const inv = await s.getInvocation(left.id);
      assert.deepEqual([inv.state, inv.error?.code], ["Failed", "EndpointDeleted"]);
      assert.equal((await c.read(inv.failureLocation)).InferenceId, left.id);
      assert.equal((await s.getInvocation(alive.id)).state, "Queued");
      await s.createEndpoint({ name: "e", configName: "m" });
      assert.deepEqual(await s.lease("e", "w", 10, 60_000), []);
    } finally {
      await c.close();
    }
  });
});
