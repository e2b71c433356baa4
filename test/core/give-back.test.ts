import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { Service } from "../../src/core/service.js";
import { FsObjectStore } from "../../src/storage/index.js";
import { forEachBackend, freshDatabase, type TestBackend } from "../helpers/backends.js";

/** A core over real stores, with one endpoint and an input object; no HTTP, no instances. */
async function core(backend: TestBackend, maxAttempts: number) {
  const db = await freshDatabase(backend);
  const stores = await db.open();
  const objects = new FsObjectStore({ root: join(db.config.dataDir!, "objects"), fsync: false });
  const service = new Service(stores.state, objects, {
    maxInputBytes: 1 << 20,
    maxAttempts,
    defaultBucket: "kikitori",
  });
  await objects.createBucket("kikitori");
  await objects.putObject("kikitori", "in.wav", Buffer.from("audio"));
  await service.createModel({ name: "m", image: "local:true" });
  await service.createEndpointConfig({ name: "m", variants: [{ modelName: "m" }], asyncConfig: {} });
  await service.createEndpoint({ name: "m", configName: "m" });
  const invoke = () => service.invokeAsync({ endpoint: "m", inputLocation: "s3://kikitori/in.wav" });
  const exists = async (location: string) => {
    const key = location.replace("s3://kikitori/", "");
    return objects.headObject("kikitori", key).then(
      () => true,
      () => false,
    );
  };
  const close = async () => {
    await stores.close();
    await objects.close();
  };
  return { service, invoke, exists, close };
}

const crashed = { code: "ModelServerUnavailable", message: "the model server failed" } as const;

forEachBackend((backend) => {
  test(`${backend}: give back: a retryable cause requeues while attempts remain, then fails with one failure document`, async () => {
    const c = await core(backend, 2);
    try {
      const inv = await c.invoke();
      const [first] = await c.service.lease("m", "w1", 1, 10_000);
      assert.equal(await c.service.giveBack(first!, "w1", crashed), "requeued");
      assert.equal((await c.service.getInvocation(inv.id)).state, "Queued");
      const [second] = await c.service.lease("m", "w2", 1, 10_000);
      assert.equal(second?.attempts, 2);
      // The last attempt drained (scale-in): it must not run a third time.
      assert.equal(await c.service.giveBack(second!, "w2", crashed), "failed");
      const done = await c.service.getInvocation(inv.id);
      assert.equal(done.state, "Failed");
      assert.equal(done.error?.code, "ModelServerUnavailable");
      assert.match(done.error!.message, /gave up after 2 attempts/);
      assert.equal(await c.exists(done.failureLocation), true);
      assert.equal(await c.exists(done.outputLocation), false);
      assert.deepEqual(await c.service.lease("m", "w3", 1, 10_000), [], "nothing left to lease");
    } finally {
      await c.close();
    }
  });

  test(`${backend}: give back: a cause the error catalogue calls not retryable fails on the first attempt`, async () => {
    const c = await core(backend, 3);
    try {
      const inv = await c.invoke();
      const [leased] = await c.service.lease("m", "w1", 1, 10_000);
      const r = await c.service.giveBack(leased!, "w1", { code: "InvocationTimeout", message: "too slow" });
      assert.equal(r, "failed");
      const done = await c.service.getInvocation(inv.id);
      assert.deepEqual([done.state, done.attempts, done.error?.message], ["Failed", 1, "too slow"]);
    } finally {
      await c.close();
    }
  });

  test(`${backend}: give back: a runner that lost its lease changes nothing`, async () => {
    const c = await core(backend, 3);
    try {
      const inv = await c.invoke();
      const [leased] = await c.service.lease("m", "w1", 1, 10_000);
      assert.equal(await c.service.giveBack(leased!, "someone-else", crashed), "gone");
      assert.equal(
        await c.service.giveBack(leased!, "someone-else", { code: "InvocationTimeout", message: "x" }),
        "gone",
      );
      const cur = await c.service.getInvocation(inv.id);
      assert.deepEqual([cur.state, cur.leaseOwner], ["Running", "w1"]);
      assert.equal(await c.exists(cur.failureLocation), false, "the loser leaves no failure document");
    } finally {
      await c.close();
    }
  });

  test(`${backend}: the sweeper uses the same rule: a lapsed lease is requeued, and on its last attempt failed`, async () => {
    const c = await core(backend, 2);
    try {
      const inv = await c.invoke();
      await c.service.lease("m", "w1", 1, 1);
      assert.deepEqual(await c.service.sweep(Date.now() + 10), { expired: 0, requeued: 1, failed: 0 });
      await c.service.lease("m", "w2", 1, 1);
      assert.deepEqual(await c.service.sweep(Date.now() + 10), { expired: 0, requeued: 0, failed: 1 });
      const done = await c.service.getInvocation(inv.id);
      assert.equal(done.error?.code, "LeaseExpired");
      assert.equal(done.attempts, 2);
    } finally {
      await c.close();
    }
  });
});
