import { test } from "node:test";
import assert from "node:assert/strict";
import type { NewInvocation } from "../../src/queue/types.js";
import type { Stores, TestDatabase } from "../helpers/backends.js";

let n = 0;
export function newInvocation(over: Partial<NewInvocation> = {}): NewInvocation {
  const id = `inv-${++n}-${Math.random().toString(36).slice(2, 8)}`;
  return {
    id,
    endpoint: "ep",
    inputLocation: "s3://bucket/in.wav",
    outputLocation: `s3://bucket/out/${id}.out`,
    failureLocation: `s3://bucket/out/${id}-error.out`,
    requestTtlSeconds: 3600,
    invocationTimeoutSeconds: 900,
    maxAttempts: 2,
    createdAt: Date.now(),
    ...over,
  };
}

/** A test on a fresh database with one open connection (more with `db.open()`). */
export function withStores(
  name: string,
  fresh: () => Promise<TestDatabase>,
): (title: string, fn: (s: Stores, db: TestDatabase) => Promise<void>) => void {
  return (title, fn) =>
    test(`${name}: ${title}`, async () => {
      const db = await fresh();
      const s = await db.open();
      try {
        await fn(s, db);
      } finally {
        await s.close();
      }
    });
}

/** The behaviour every StateStore shows, on every backend: each method of the contract is exercised here. */
export function stateStoreContract(name: string, fresh: () => Promise<TestDatabase>): void {
  const t = withStores(`state ${name}`, fresh);

  t(
    "models and endpoint configs: create, get, list in creation order, delete, and refuse duplicates",
    async ({ state: s }) => {
      await s.createModel({ name: "b", image: "kikitori/whisper", environment: { A: "1" }, createdAt: 2 });
      await s.createModel({
        name: "a",
        image: "local:x",
        modelDataUrl: "s3://m/model.tar.gz",
        environment: {},
        createdAt: 1,
      });
      await assert.rejects(
        s.createModel({ name: "a", image: "y", environment: {}, createdAt: 3 }),
        /Model "a" already exists/,
      );
      assert.deepEqual(await s.getModel("b"), {
        name: "b",
        image: "kikitori/whisper",
        environment: { A: "1" },
        createdAt: 2,
      });
      assert.deepEqual(
        (await s.listModels()).map((m) => m.name),
        ["a", "b"],
      );
      assert.equal(await s.deleteModel("a"), true);
      assert.equal(await s.deleteModel("a"), false);
      assert.equal(await s.getModel("a"), undefined);

      const config = {
        name: "c",
        variants: [
          { variantName: "AllTraffic", modelName: "b", instanceType: "local", initialInstanceCount: 1 },
        ],
        asyncConfig: { outputPath: "s3://o/p", maxConcurrentInvocationsPerInstance: 2 },
        createdAt: 5,
      };
      await s.createEndpointConfig(config);
      await assert.rejects(s.createEndpointConfig(config), /EndpointConfig "c" already exists/);
      assert.deepEqual(await s.getEndpointConfig("c"), config);
      assert.deepEqual(
        (await s.listEndpointConfigs()).map((c) => c.name),
        ["c"],
      );
      assert.equal(await s.deleteEndpointConfig("c"), true);
      assert.deepEqual(await s.listEndpointConfigs(), []);
    },
  );

  t("endpoints: create, update a patch (clearing a reason), list, delete", async ({ state: s }) => {
    await s.createEndpoint({ name: "e2", configName: "c", status: "Creating", createdAt: 2, updatedAt: 2 });
    await s.createEndpoint({ name: "e1", configName: "c", status: "Creating", createdAt: 1, updatedAt: 1 });
    await assert.rejects(
      s.createEndpoint({ name: "e1", configName: "c", status: "Creating", createdAt: 1, updatedAt: 1 }),
      /Endpoint "e1" already exists/,
    );
    await s.updateEndpoint("e1", { status: "Failed", failureReason: "model crashed", updatedAt: 10 });
    assert.deepEqual(await s.getEndpoint("e1"), {
      name: "e1",
      configName: "c",
      status: "Failed",
      failureReason: "model crashed",
      createdAt: 1,
      updatedAt: 10,
      deployment: undefined,
      pending: undefined,
    });
    await s.updateEndpoint("e1", {
      configName: "c2",
      status: "Updating",
      failureReason: undefined,
      updatedAt: 11,
    });
    const e1 = await s.getEndpoint("e1");
    assert.deepEqual([e1?.configName, e1?.status, e1?.failureReason], ["c2", "Updating", undefined]);
    await s.updateEndpoint("missing", { status: "InService" });
    assert.deepEqual(
      (await s.listEndpoints()).map((e) => e.name),
      ["e1", "e2"],
    );
    assert.equal(await s.deleteEndpoint("e2"), true);
    assert.equal(await s.deleteEndpoint("e2"), false);
    assert.equal(await s.getEndpoint("e2"), undefined);
  });

  t(
    "endpoints keep their deployments; a guarded update applies only while its guard holds",
    async ({ state: s }, db) => {
      const deployment = (id: string, configName: string) => ({
        id,
        config: {
          name: configName,
          variants: [{ variantName: "v", modelName: "m", instanceType: "local", initialInstanceCount: 2 }],
          asyncConfig: { outputPath: "s3://o/p", maxConcurrentInvocationsPerInstance: 1 },
          createdAt: 1,
        },
        models: [{ name: "m", image: "kikitori/whisper", environment: { A: "1" }, createdAt: 1 }],
        createdAt: 3,
      });
      const blue = deployment("d-blue", "c1");
      const green = deployment("d-green", "c2");
      await s.createEndpoint({
        name: "e",
        configName: "c1",
        status: "InService",
        createdAt: 1,
        updatedAt: 1,
        deployment: blue,
      });
      assert.deepEqual((await s.getEndpoint("e"))?.deployment, blue);
      // An update in progress: only from InService; a second one is refused by the guard.
      const update = { pending: green, status: "Updating" as const };
      assert.equal(await s.updateEndpoint("e", update, { status: ["InService"] }), true);
      assert.equal(await s.updateEndpoint("e", update, { status: ["InService"] }), false);
      assert.equal(await s.updateEndpoint("missing", update), false);
      // Promotion names the pending deployment: a stale one (rolled back, replaced) changes nothing.
      const promote = {
        configName: "c2",
        deployment: green,
        pending: undefined,
        status: "InService" as const,
      };
      assert.equal(await s.updateEndpoint("e", promote, { pending: "d-other" }), false);
      const other = await db.open(); // what another process reads
      try {
        const mid = await other.state.getEndpoint("e");
        assert.deepEqual([mid?.status, mid?.deployment, mid?.pending], ["Updating", blue, green]);
        assert.equal(
          await s.updateEndpoint("e", promote, { status: ["Updating"], pending: "d-green" }),
          true,
        );
        const done = await other.state.getEndpoint("e");
        assert.deepEqual(
          [done?.configName, done?.status, done?.deployment, done?.pending],
          ["c2", "InService", green, undefined],
        );
      } finally {
        await other.close();
      }
      // Concurrent guarded changes from the same state: exactly one applies.
      await s.updateEndpoint("e", { status: "Updating", pending: blue });
      const results = await Promise.all(
        ["d-blue", "d-blue", "d-blue"].map((id, i) =>
          s.updateEndpoint(
            "e",
            { status: "InService", pending: undefined, failureReason: `r${i}` },
            { pending: id },
          ),
        ),
      );
      assert.deepEqual(results.filter(Boolean).length, 1);
    },
  );

  t("enqueue is durable, keeps every field, and rejects a duplicate id", async ({ state: s }, db) => {
    const webhook = { url: "https://h/x", events: ["completed"], includeTranscript: true };
    const inv = await s.enqueue(
      newInvocation({
        id: "dup",
        contentType: "audio/wav",
        accept: "text/srt",
        customAttributes: "language=ja",
        webhook,
        notification: { errorTopic: "arn:aws:sns:us-east-1:000000000000:errors" },
      }),
    );
    assert.deepEqual([inv.state, inv.attempts, inv.maxAttempts], ["Queued", 0, 2]);
    await assert.rejects(s.enqueue(newInvocation({ id: "dup" })), /Invocation "dup" already exists/);
    const other = await db.open(); // another connection (another process) sees it committed
    try {
      const got = await other.state.getInvocation("dup");
      const { ahead, ...stored } = inv;
      assert.deepEqual(ahead, { position: 1, bytesAhead: 0, unsizedAhead: 0 });
      assert.deepEqual(got, stored);
      assert.deepEqual(got?.webhook, webhook);
      assert.equal(got?.customAttributes, "language=ja");
      assert.deepEqual(got?.notification, { errorTopic: "arn:aws:sns:us-east-1:000000000000:errors" });
    } finally {
      await other.close();
    }
    assert.equal(await s.getInvocation("nope"), undefined);
  });

  t("concurrent enqueues all become durable; a duplicate among them fails alone", async ({ state: s }) => {
    const invs = Array.from({ length: 20 }, () => newInvocation());
    const results = await Promise.allSettled([
      ...invs.map((i) => s.enqueue(i)),
      s.enqueue(newInvocation({ id: invs[3]!.id })),
    ]);
    assert.equal(results.filter((r) => r.status === "fulfilled").length, 20);
    const failed = results.filter((r) => r.status === "rejected");
    assert.equal(failed.length, 1);
    assert.match(String((failed[0] as PromiseRejectedResult).reason), /already exists/);
    for (const i of invs) assert.equal((await s.getInvocation(i.id))?.state, "Queued");
    assert.equal((await s.backlog("ep")).queued, 20);
  });

  t("listing pages newest first by seq, filtered by endpoint and state", async ({ state: s }) => {
    const ids: string[] = [];
    for (let i = 0; i < 7; i++)
      ids.push((await s.enqueue(newInvocation({ endpoint: i % 2 ? "odd" : "ep" }))).id);
    const all = await s.listInvocations({ limit: 3 });
    assert.deepEqual(
      all.map((i) => i.id),
      ids.slice(-3).reverse(),
    );
    const page2 = await s.listInvocations({ limit: 3, beforeSeq: all[2]!.seq });
    assert.deepEqual(
      page2.map((i) => i.id),
      ids.slice(1, 4).reverse(),
    );
    const last = await s.listInvocations({ limit: 3, beforeSeq: page2[2]!.seq });
    assert.deepEqual(
      last.map((i) => i.id),
      [ids[0]],
    );
    assert.deepEqual(
      (await s.listInvocations({ endpoint: "odd" })).map((i) => i.id),
      [ids[5], ids[3], ids[1]],
    );
    await s.lease("ep", "w", 1, 10_000, Date.now());
    assert.deepEqual(
      (await s.listInvocations({ state: "Running" })).map((i) => i.id),
      [ids[0]],
    );
    assert.deepEqual(
      (await s.listInvocations({ endpoint: "ep", state: "Queued" })).map((i) => i.id),
      [ids[6], ids[4], ids[2]],
    );
  });

  t("invocations record who created them (principal), and listing filters by it", async ({ state: s }) => {
    const a = await s.enqueue(newInvocation({ principal: "key/000000000001" }));
    const b = await s.enqueue(newInvocation({ principal: "key/000000000002" }));
    const c = await s.enqueue(newInvocation());
    assert.equal((await s.getInvocation(a.id))?.principal, "key/000000000001");
    assert.equal((await s.getInvocation(c.id))?.principal, undefined);
    assert.deepEqual(
      (await s.listInvocations({ principal: "key/000000000002" })).map((i) => i.id),
      [b.id],
    );
    assert.equal((await s.listInvocations({})).length, 3);
  });

  t("queue positions count only queued work of the same endpoint, in order", async ({ state: s }) => {
    const a = await s.enqueue(newInvocation());
    const b = await s.enqueue(newInvocation());
    await s.enqueue(newInvocation({ endpoint: "other" }));
    const c = await s.enqueue(newInvocation());
    assert.deepEqual(
      [await s.queuePosition(a.id), await s.queuePosition(b.id), await s.queuePosition(c.id)],
      [1, 2, 3],
    );
    await s.lease("ep", "w1", 1, 10_000, Date.now());
    assert.equal(await s.queuePosition(a.id), undefined);
    assert.equal(await s.queuePosition(c.id), 2);
    assert.equal(await s.queuePosition("nope"), undefined);
  });

  t(
    "queueAhead sums the input bytes queued ahead, and says how many are of unknown size",
    async ({ state: s }) => {
      const a = await s.enqueue(newInvocation({ inputBytes: 1000 }));
      const b = await s.enqueue(newInvocation());
      await s.enqueue(newInvocation({ endpoint: "other", inputBytes: 5 }));
      const c = await s.enqueue(newInvocation({ inputBytes: 300 }));
      assert.equal(a.inputBytes, 1000, "the size is stored");
      assert.deepEqual(await s.queueAhead(a.id), { position: 1, bytesAhead: 0, unsizedAhead: 0 });
      assert.deepEqual(await s.queueAhead(b.id), { position: 2, bytesAhead: 1000, unsizedAhead: 0 });
      assert.deepEqual(await s.queueAhead(c.id), { position: 3, bytesAhead: 1000, unsizedAhead: 1 });
      await s.lease("ep", "w1", 1, 10_000, Date.now());
      assert.equal(await s.queueAhead(a.id), undefined, "a running invocation has no queue ahead");
      assert.deepEqual(await s.queueAhead(c.id), { position: 2, bytesAhead: 0, unsizedAhead: 1 });
      assert.equal(await s.queueAhead("nope"), undefined);
    },
  );

  t("enqueue says what was queued ahead at its commit, inside one group commit too", async ({ state: s }) => {
    const a = await s.enqueue(newInvocation({ inputBytes: 1000 }));
    assert.deepEqual(a.ahead, { position: 1, bytesAhead: 0, unsizedAhead: 0 });
    // Three in one turn of the event loop: one group commit, each counting the ones before it.
    const [b, other, c] = await Promise.all([
      s.enqueue(newInvocation()),
      s.enqueue(newInvocation({ endpoint: "other", inputBytes: 5 })),
      s.enqueue(newInvocation({ inputBytes: 300 })),
    ]);
    assert.deepEqual(b!.ahead, { position: 2, bytesAhead: 1000, unsizedAhead: 0 });
    assert.deepEqual(other!.ahead, { position: 1, bytesAhead: 0, unsizedAhead: 0 });
    assert.deepEqual(c!.ahead, { position: 3, bytesAhead: 1000, unsizedAhead: 1 });
    for (const inv of [a, b!, other!, c!])
      assert.deepEqual(inv.ahead, await s.queueAhead(inv.id), `${inv.id}: as queueAhead reads it`);
    await s.lease("ep", "w1", 1, 10_000, Date.now());
    const d = await s.enqueue(newInvocation({ inputBytes: 7 }));
    assert.deepEqual(d.ahead, { position: 3, bytesAhead: 300, unsizedAhead: 1 }, "the leased one left");
  });

  t("the queue's totals follow every way into and out of the queue", async ({ state: s }) => {
    // The stores keep these totals incrementally (migration 0015): check them against the rows after each
    // kind of change — enqueue, lease, requeue, cancel or expiry of queued work, success, failure.
    const truth = async () => {
      const queued = await s.listInvocations({ endpoint: "ep", state: "Queued", limit: 1000 });
      return {
        position: queued.length + 1,
        bytesAhead: queued.reduce((n, i) => n + (i.inputBytes ?? 0), 0),
        unsizedAhead: queued.filter((i) => i.inputBytes === undefined).length,
      };
    };
    const check = async (step: string) => {
      const expected = await truth();
      const probe = await s.enqueue(newInvocation({ inputBytes: 1 }));
      assert.deepEqual(probe.ahead, expected, `after ${step}`);
      assert.equal((await s.backlog("ep")).queued, expected.position, `backlog after ${step}`);
      const gone = { state: "Failed" as const, error: { code: "ModelError", message: "probe" } };
      assert.ok(await s.finish(probe.id, gone, { from: ["Queued"] }, Date.now()));
    };
    const now = Date.now();
    const invs = await Promise.all(
      [100, 200, undefined, 400, 800, 1600].map((inputBytes) => s.enqueue(newInvocation({ inputBytes }))),
    );
    await check("enqueues");
    const leased = await s.lease("ep", "w1", 3, 1000, now);
    assert.equal(leased.length, 3);
    await check("a lease");
    assert.ok(await s.requeue(leased[0]!.id, { from: ["Running"], owner: "w1" }));
    await check("a requeue");
    assert.ok(await s.finish(leased[1]!.id, { state: "Succeeded" }, { from: ["Running"], owner: "w1" }, now));
    await check("a success (not queued: no change)");
    const expired = { state: "Expired" as const, error: { code: "RequestExpired", message: "ttl" } };
    assert.ok(await s.finish(invs[5]!.id, expired, { from: ["Queued"] }, now));
    await check("an expiry");
    const cancelled = { state: "Cancelled" as const, error: { code: "Cancelled", message: "by request" } };
    assert.ok(await s.finish(invs[4]!.id, cancelled, { from: ["Queued"] }, now));
    await check("a cancel of queued work");
    assert.deepEqual((await truth()).position, 3, "two left queued: the requeued one and one never leased");
  });

  t(
    "throughput sums the last successful invocations of known size: bytes and lease-to-finish time",
    async ({ state: s }) => {
      assert.deepEqual(await s.throughput("ep", 10), { invocations: 0, bytes: 0, seconds: 0 });
      const done = async (over: Partial<NewInvocation>, ms: number, ok = true) => {
        const inv = await s.enqueue(newInvocation(over));
        const [leased] = await s.lease(inv.endpoint, "w", 1, 60_000, 10_000);
        assert.equal(leased?.id, inv.id);
        const state = ok ? "Succeeded" : "Failed";
        assert.ok(await s.finish(inv.id, { state }, { from: ["Running"], owner: "w" }, 10_000 + ms));
      };
      await done({ inputBytes: 100 }, 1000);
      await done({ inputBytes: 200 }, 3000);
      await done({ inputBytes: 400 }, 4000);
      await done({}, 9000); // size unknown: not counted
      await done({ inputBytes: 800 }, 9000, false); // failed: not counted
      await done({ inputBytes: 50, endpoint: "other" }, 9000);
      assert.deepEqual(await s.throughput("ep", 10), { invocations: 3, bytes: 700, seconds: 8 });
      assert.deepEqual(
        await s.throughput("ep", 2),
        { invocations: 2, bytes: 600, seconds: 7 },
        "the last two",
      );
    },
  );

  t(
    "checkpoints are kept only for the lease holder, once per key, and go when the invocation ends",
    async ({ state: s }) => {
      const inv = await s.enqueue(newInvocation());
      assert.equal(await s.saveCheckpoints(inv.id, "w1", [{ key: 0, data: {} }]), false, "not running yet");
      await s.lease("ep", "w1", 1, 60_000, Date.now());
      const part = (key: number, text: string) => ({ key, data: { start: key, segments: [{ text }] } });
      assert.equal(await s.saveCheckpoints(inv.id, "w1", [part(480_000, "b"), part(0, "a")]), true);
      assert.equal(await s.saveCheckpoints(inv.id, "w2", [part(960_000, "stolen")]), false, "another owner");
      assert.equal(await s.saveCheckpoints(inv.id, "w1", [part(0, "again"), part(960_000, "c")]), true);
      assert.equal(await s.saveCheckpoints(inv.id, "w1", []), true, "nothing new is fine");
      assert.deepEqual(await s.listCheckpoints(inv.id), [
        part(0, "a"),
        part(480_000, "b"),
        part(960_000, "c"),
      ]);
      assert.deepEqual(await s.listCheckpoints("nope"), []);
      // A requeued invocation keeps them for its next attempt; finishing removes them.
      assert.ok(await s.requeue(inv.id, { from: ["Running"], owner: "w1" }));
      assert.equal((await s.listCheckpoints(inv.id)).length, 3);
      await s.lease("ep", "w2", 1, 60_000, Date.now());
      assert.ok(
        await s.finish(inv.id, { state: "Succeeded" }, { from: ["Running"], owner: "w2" }, Date.now()),
      );
      assert.deepEqual(await s.listCheckpoints(inv.id), []);
    },
  );

  t("backlog counts queued and running work and the oldest queued request", async ({ state: s }) => {
    assert.deepEqual(await s.backlog("ep"), { queued: 0, running: 0, oldestQueuedAt: undefined });
    await s.enqueue(newInvocation({ createdAt: 1000 }));
    await s.enqueue(newInvocation({ createdAt: Date.now() }));
    await s.enqueue(newInvocation({ createdAt: 500, endpoint: "other" }));
    await s.lease("ep", "w", 1, 10_000, 2000);
    const b = await s.backlog("ep");
    assert.deepEqual([b.queued, b.running], [1, 1]);
    assert.ok(b.oldestQueuedAt! > 1000, "the leased one is no longer the oldest queued");
  });

  t("a lease hands each invocation to one owner, oldest first, up to max", async ({ state: s }) => {
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push((await s.enqueue(newInvocation())).id);
    const now = Date.now();
    const [first, second] = await Promise.all([
      s.lease("ep", "w1", 3, 10_000, now),
      s.lease("ep", "w2", 3, 10_000, now),
    ]);
    const got = [...first, ...second].map((i) => i.id);
    assert.equal(new Set(got).size, 5, "no invocation leased twice");
    assert.ok(first.every((i) => i.state === "Running" && i.attempts === 1 && i.leaseOwner === "w1"));
    assert.ok(first.every((i) => i.leaseExpiresAt === now + 10_000 && i.startedAt === now));
    assert.deepEqual(await s.lease("ep", "w3", 3, 10_000, now), []);
    assert.deepEqual(await s.lease("ep", "w3", 0, 10_000, now), []);
    const b = await s.backlog("ep");
    assert.deepEqual([b.queued, b.running], [0, 5]);
  });

  t("two connections leasing concurrently get each invocation once", async ({ state: s }, db) => {
    const total = 200;
    await Promise.all(Array.from({ length: total }, () => s.enqueue(newInvocation())));
    const other = await db.open();
    try {
      const got: string[][] = [[], []];
      await Promise.all(
        [s, other.state].map(async (store, k) => {
          for (;;) {
            const batch = await store.lease("ep", `w${k}`, 7, 60_000, Date.now());
            if (!batch.length) return;
            got[k]!.push(...batch.map((i) => i.id));
          }
        }),
      );
      const all = [...got[0]!, ...got[1]!];
      assert.equal(all.length, total, "every invocation leased");
      assert.equal(new Set(all).size, total, "none leased twice");
      assert.ok(
        got[0]!.length > 0 && got[1]!.length > 0,
        `both connections leased (${got[0]!.length}/${got[1]!.length})`,
      );
    } finally {
      await other.close();
    }
  });

  t(
    "heartbeats extend the lease for the owner only, record progress, and report cancel requests",
    async ({ state: s }) => {
      const inv = await s.enqueue(newInvocation());
      const now = Date.now();
      assert.equal(await s.requestCancel(inv.id), false, "only a running invocation can be asked to stop");
      await s.lease("ep", "w1", 1, 1000, now);
      assert.equal(await s.heartbeat(inv.id, "w2", 1000, now), "lost");
      assert.equal(
        await s.heartbeat(inv.id, "w1", 5000, now, { processedSeconds: 3, totalSeconds: 10 }),
        "ok",
      );
      assert.equal(await s.heartbeat(inv.id, "w1", 5000, now), "ok", "no progress keeps the last");
      const cur = await s.getInvocation(inv.id);
      assert.deepEqual([cur?.leaseExpiresAt, cur?.progressSeconds, cur?.totalSeconds], [now + 5000, 3, 10]);
      assert.equal(await s.requestCancel(inv.id), true);
      assert.equal(await s.heartbeat(inv.id, "w1", 5000, now), "cancel-requested");
    },
  );

  t(
    "stranded work: queued and running invocations of an endpoint that no longer exists",
    async ({ state: s }) => {
      await s.createEndpoint({
        name: "live",
        configName: "c",
        status: "InService",
        createdAt: 1,
        updatedAt: 1,
      });
      const kept = await s.enqueue(newInvocation({ endpoint: "live" }));
      const leased = await s.enqueue(newInvocation({ endpoint: "gone" }));
      const waiting = await s.enqueue(newInvocation({ endpoint: "gone" }));
      const done = await s.enqueue(newInvocation({ endpoint: "gone" }));
      await s.lease("gone", "w", 1, 60_000, Date.now()); // the oldest of "gone"
      await s.finish(done.id, { state: "Failed" }, { from: ["Queued"] }, Date.now());
      assert.deepEqual(
        (await s.findStranded(10)).map((i) => [i.id, i.state]),
        [
          [leased.id, "Running"],
          [waiting.id, "Queued"],
        ],
      );
      assert.equal((await s.findStranded(1)).length, 1);
      assert.ok(!(await s.findStranded(10)).some((i) => i.id === kept.id));
    },
  );

  t(
    "lease expiry and takeover: the lapsed lease is found, requeued, leased by another; the old owner is shut out",
    async ({ state: s }) => {
      const inv = await s.enqueue(newInvocation());
      const now = Date.now();
      await s.lease("ep", "w1", 1, 1000, now);
      assert.deepEqual(
        (await s.findLapsedLeases(now + 500, 10)).map((i) => i.id),
        [],
      );
      assert.deepEqual(
        (await s.findLapsedLeases(now + 1000, 10)).map((i) => i.id),
        [inv.id],
      );
      assert.equal(
        await s.requeue(inv.id, { from: ["Running"], owner: "w2" }),
        false,
        "not w2's to give back",
      );
      assert.equal(await s.requeue(inv.id, { from: ["Running"], owner: "w1" }), true);
      assert.equal(await s.requeue(inv.id, { from: ["Running"], owner: "w1" }), false, "only once");
      const [again] = await s.lease("ep", "w2", 1, 1000, now + 1000);
      assert.deepEqual(
        [again?.attempts, again?.leaseOwner, again?.startedAt],
        [2, "w2", now],
        "startedAt is the first start",
      );
      assert.equal(await s.heartbeat(inv.id, "w1", 1000, now), "lost");
      assert.equal(
        await s.finish(inv.id, { state: "Succeeded" }, { from: ["Running"], owner: "w1" }, now),
        undefined,
        "stale owner",
      );
      const ended = await s.finish(
        inv.id,
        { state: "Succeeded", modelTimeMs: 12 },
        { from: ["Running"], owner: "w2" },
        now + 5,
      );
      assert.equal(
        await s.finish(inv.id, { state: "Failed" }, { from: ["Running"], owner: "w2" }, now),
        undefined,
        "already terminal",
      );
      const done = await s.getInvocation(inv.id);
      assert.deepEqual(ended, done, "finish answers the invocation as it ended it");
      assert.deepEqual(
        [done?.state, done?.modelTimeMs, done?.finishedAt, done?.leaseOwner, done?.leaseExpiresAt],
        ["Succeeded", 12, now + 5, undefined, undefined],
      );
    },
  );

  t("an invocation whose attempts reached its bound is never leased again", async ({ state: s }) => {
    const inv = await s.enqueue(newInvocation({ maxAttempts: 2 }));
    for (const owner of ["w1", "w2"]) {
      const [l] = await s.lease("ep", owner, 1, 1000, Date.now());
      assert.equal(l?.id, inv.id);
      assert.equal(await s.requeue(inv.id, { from: ["Running"], owner }), true);
    }
    assert.deepEqual(await s.lease("ep", "w3", 1, 1000, Date.now()), []);
    assert.equal((await s.getInvocation(inv.id))?.attempts, 2);
  });

  t("finish records the error, and one outbox event per terminal change", async ({ state: s }) => {
    const a = await s.enqueue(newInvocation());
    const b = await s.enqueue(newInvocation());
    const err = { code: "ModelError", message: "bad audio" };
    assert.equal(
      await s.finish(
        a.id,
        { state: "Cancelled", error: { code: "Cancelled", message: "x" } },
        { from: ["Running"] },
        1,
      ),
      undefined,
    );
    assert.equal(
      (await s.finish(a.id, { state: "Failed", error: err }, { from: ["Queued"] }, 1))?.state,
      "Failed",
    );
    assert.deepEqual((await s.getInvocation(a.id))?.error, err);
    await s.lease("ep", "w", 1, 1000, Date.now());
    const finished = await s.finish(b.id, { state: "Succeeded", modelTimeMs: 7 }, { from: ["Running"] }, 2);
    assert.ok(finished, "no owner in the guard: any owner");
    const events = await s.pendingEvents(100);
    // The event carries the invocation as it ended: what finish returned and what a read gives.
    assert.deepEqual(events[1]?.payload, finished);
    assert.deepEqual(finished, await s.getInvocation(b.id));
    assert.equal(finished.finishedAt, 2);
    assert.equal(finished.modelTimeMs, 7);
    assert.deepEqual(
      events.map((e) => [e.invocationId, e.type]),
      [
        [a.id, "invocation.completed"],
        [b.id, "invocation.completed"],
      ],
    );
    assert.equal((events[0]!.payload as { state: string }).state, "Failed");
    assert.ok(events[0]!.id < events[1]!.id);
    assert.deepEqual(
      (await s.pendingEvents(1)).map((e) => e.id),
      [events[0]!.id],
    );
    await s.markEventsDelivered([events[0]!.id]);
    assert.deepEqual(
      (await s.pendingEvents(100)).map((e) => e.id),
      [events[1]!.id],
    );
    await s.markEventsDelivered([]);
    await s.markEventsDelivered([events[1]!.id]);
    assert.deepEqual(await s.pendingEvents(100), []);
  });

  t("queued invocations past their TTL are found and never leased", async ({ state: s }) => {
    const old = await s.enqueue(newInvocation({ createdAt: Date.now() - 120_000, requestTtlSeconds: 60 }));
    const fresh = await s.enqueue(newInvocation());
    assert.deepEqual(
      (await s.findExpiredQueued(Date.now(), 10)).map((i) => i.id),
      [old.id],
    );
    assert.deepEqual(
      (await s.findExpiredQueued(Date.now(), 0)).map((i) => i.id),
      [],
    );
    assert.deepEqual(
      (await s.lease("ep", "w1", 10, 1000, Date.now())).map((i) => i.id),
      [fresh.id],
    );
    const expired = { state: "Expired" as const, error: { code: "RequestExpired", message: "ttl" } };
    assert.ok(await s.finish(old.id, expired, { from: ["Queued"] }, Date.now()));
    assert.equal((await s.getInvocation(old.id))?.error?.code, "RequestExpired");
    assert.deepEqual(await s.findExpiredQueued(Date.now(), 10), []);
  });

  t(
    "instances: upsert keeps the first fields and updates the state; listed by endpoint and liveness",
    async ({ state: s }) => {
      const base = { endpoint: "ep", variant: "AllTraffic", host: "h1", node: "h1/42/1000", startedAt: 1 };
      await s.upsertInstance({ ...base, id: "i-1", state: "Pending" });
      await s.upsertInstance({
        ...base,
        id: "i-2",
        state: "InService",
        port: 9000,
        pid: 42,
        startedAt: 2,
        inServiceAt: 3,
      });
      await s.upsertInstance({ ...base, id: "i-3", endpoint: "other", state: "Draining", startedAt: 3 });
      await s.upsertInstance({ ...base, id: "i-1", state: "Failed", reason: "crashed", endedAt: 9 });
      assert.deepEqual(
        (await s.listInstances({})).map((i) => [i.id, i.state]),
        [
          ["i-1", "Failed"],
          ["i-2", "InService"],
          ["i-3", "Draining"],
        ],
      );
      assert.deepEqual(
        (await s.listInstances({ live: true })).map((i) => i.id),
        ["i-2", "i-3"],
      );
      assert.deepEqual(
        (await s.listInstances({ endpoint: "ep", live: true })).map((i) => i.id),
        ["i-2"],
      );
      const [i1] = await s.listInstances({ endpoint: "ep" });
      assert.deepEqual(i1, {
        ...base,
        id: "i-1",
        state: "Failed",
        reason: "crashed",
        endedAt: 9,
        port: undefined,
        pid: undefined,
        inServiceAt: undefined,
        deployment: undefined,
        placement: undefined,
        address: undefined,
      });
      const i2 = (await s.listInstances({ endpoint: "ep", live: true }))[0]!;
      assert.deepEqual([i2.port, i2.pid, i2.inServiceAt], [9000, 42, 3]);
    },
  );

  t("close waits for enqueues in flight, and a reopened store sees them", async (_s, db) => {
    const own = await db.open();
    const p = own.state.enqueue(newInvocation({ id: "late" }));
    await own.close();
    assert.equal((await p).id, "late");
    const again = await db.open();
    try {
      assert.equal((await again.state.getInvocation("late"))?.state, "Queued");
    } finally {
      await again.close();
    }
  });
}
