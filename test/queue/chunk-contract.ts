import assert from "node:assert/strict";
import type { TestDatabase } from "../helpers/backends.js";
import { newInvocation, withStores } from "./state-contract.js";

const plan = (n: number, speech = 10) =>
  Array.from({ length: n }, (_, idx) => ({
    idx,
    speechSeconds: speech,
    data: { regions: [[idx, idx + 1]] },
  }));

/** The chunks of long invocations (src/queue/chunks.ts), on every backend. */
export function chunkStoreContract(name: string, fresh: () => Promise<TestDatabase>): void {
  const t = withStores(`chunks ${name}`, fresh);

  t(
    "a plan is stored only by the invocation's lease holder, once, and its chunks lease in order",
    async ({ state: s }) => {
      const now = Date.now();
      const a = await s.enqueue(newInvocation({ maxAttempts: 3 }));
      const b = await s.enqueue(newInvocation({ maxAttempts: 3 }));
      assert.equal(await s.saveChunkPlan(a.id, "p", "v", plan(3)), false, "not running");
      await s.lease("ep", "p", 2, 60_000, now);
      assert.equal(await s.saveChunkPlan(a.id, "other", "v", plan(3)), false, "another owner");
      assert.equal(await s.chunkProgress(a.id), undefined, "no plan yet");
      // b is planned first, a second: a (the older invocation) still leases first.
      assert.equal(await s.saveChunkPlan(b.id, "p", "v", plan(2)), true);
      assert.equal(await s.saveChunkPlan(a.id, "p", "v", plan(3)), true);
      assert.equal(await s.saveChunkPlan(a.id, "p", "v", plan(5, 1)), true, "a later plan keeps the first");
      assert.deepEqual(await s.chunkProgress(a.id), {
        chunks: 3,
        done: 0,
        speechSeconds: 30,
        doneSeconds: 0,
      });
      assert.deepEqual(
        await s.leaseChunks("ep", "other-variant", "w", 9, 60_000, now),
        [],
        "another variant's",
      );
      assert.deepEqual(await s.leaseChunks("other-ep", "v", "w", 9, 60_000, now), []);
      const first = await s.leaseChunks("ep", "v", "w1", 2, 60_000, now);
      assert.deepEqual(
        first.map((c) => [c.invocationId, c.idx, c.attempts]),
        [
          [a.id, 0, 1],
          [a.id, 1, 1],
        ],
      );
      assert.deepEqual(first[1]!.data, { regions: [[1, 2]] });
      const rest = await s.leaseChunks("ep", "v", "w2", 9, 60_000, now);
      assert.deepEqual(
        rest.map((c) => [c.invocationId, c.idx]),
        [
          [a.id, 2],
          [b.id, 0],
          [b.id, 1],
        ],
      );
      assert.deepEqual(await s.leaseChunks("ep", "v", "w3", 9, 60_000, now), [], "none left");
    },
  );

  t("two connections leasing at once never get the same chunk", async ({ state: s }, db) => {
    const other = await db.open();
    try {
      const inv = await s.enqueue(newInvocation());
      await s.lease("ep", "p", 1, 60_000, Date.now());
      await s.saveChunkPlan(inv.id, "p", "v", plan(20));
      const got = await Promise.all(
        [s, other.state, s, other.state].map((st, i) =>
          st.leaseChunks("ep", "v", `w${i}`, 6, 60_000, Date.now()),
        ),
      );
      const idx = got.flat().map((c) => c.idx);
      assert.equal(idx.length, 20);
      assert.equal(new Set(idx).size, 20);
    } finally {
      await other.close();
    }
  });

  t(
    "results are kept by the chunk's holder; progress counts done speech; the invocation's end removes all",
    async ({ state: s }) => {
      const inv = await s.enqueue(newInvocation());
      await s.lease("ep", "p", 1, 60_000, Date.now());
      await s.saveChunkPlan(inv.id, "p", "v", [
        { idx: 0, speechSeconds: 20, data: { n: 0 } },
        { idx: 1, speechSeconds: 5, data: { n: 1 } },
        { idx: 2, speechSeconds: 15, data: { n: 2 } },
      ]);
      const [c0, c1, c2] = await s.leaseChunks("ep", "v", "w", 3, 60_000, Date.now());
      assert.ok(c0 && c1 && c2);
      assert.equal(await s.finishChunk(inv.id, 2, "thief", { result: { text: "no" } }), false);
      assert.equal(await s.finishChunk(inv.id, 2, "w", { result: { text: "c" } }), true);
      assert.equal(await s.finishChunk(inv.id, 2, "w", { result: { text: "again" } }), false, "once");
      assert.equal(await s.finishChunk(inv.id, 0, "w", { result: { text: "a" } }), true);
      assert.deepEqual(await s.chunkProgress(inv.id), {
        chunks: 3,
        done: 2,
        speechSeconds: 40,
        doneSeconds: 35,
      });
      assert.deepEqual(await s.chunkResults(inv.id), [
        { idx: 0, data: { n: 0 }, result: { text: "a" } },
        { idx: 2, data: { n: 2 }, result: { text: "c" } },
      ]);
      assert.equal(await s.finishChunk(inv.id, 1, "w", { error: "the model server answered 500" }), true);
      assert.equal((await s.chunkProgress(inv.id))?.failed, "the model server answered 500");
      assert.ok(
        await s.finish(inv.id, { state: "Succeeded" }, { from: ["Running"], owner: "p" }, Date.now()),
      );
      assert.equal(await s.chunkProgress(inv.id), undefined);
      assert.deepEqual(await s.chunkResults(inv.id), []);
    },
  );

  t(
    "heartbeats renew the holder's lease and carry a cancel request; cancelled work is not leased",
    async ({ state: s }) => {
      const now = Date.now();
      const inv = await s.enqueue(newInvocation());
      await s.lease("ep", "p", 1, 60_000, now);
      await s.saveChunkPlan(inv.id, "p", "v", plan(2));
      await s.leaseChunks("ep", "v", "w", 1, 1000, now);
      assert.equal(await s.heartbeatChunk(inv.id, 0, "w", 60_000, now), "ok");
      assert.equal(await s.heartbeatChunk(inv.id, 0, "x", 60_000, now), "lost");
      assert.equal(await s.heartbeatChunk(inv.id, 1, "w", 60_000, now), "lost", "not leased");
      assert.deepEqual(
        await s.releaseChunks({ lapsedBefore: now + 2000 }, "lapsed"),
        [],
        "renewed: not lapsed",
      );
      assert.ok(await s.requestCancel(inv.id));
      assert.equal(await s.heartbeatChunk(inv.id, 0, "w", 60_000, now), "cancel-requested");
      assert.deepEqual(await s.leaseChunks("ep", "v", "w2", 9, 60_000, now), [], "cancel requested");
    },
  );

  t(
    "chunks given back are requeued while attempts remain, then failed; lapsed leases likewise",
    async ({ state: s }) => {
      const now = Date.now();
      const inv = await s.enqueue(newInvocation({ maxAttempts: 2 }));
      await s.lease("ep", "p", 1, 60_000, now);
      await s.saveChunkPlan(inv.id, "p", "v", plan(2));
      await s.leaseChunks("ep", "v", "w", 2, 1000, now);
      assert.deepEqual(
        await s.releaseChunks({ id: inv.id, idx: 0, owner: "x" }, "gone"),
        [],
        "not its holder",
      );
      assert.deepEqual(await s.releaseChunks({ id: inv.id, idx: 0, owner: "w" }, "gone"), ["ep"]);
      // Chunk 1's lease lapses (its instance died with the service).
      assert.deepEqual(await s.releaseChunks({ lapsedBefore: now + 500 }, "lapsed"), [], "not yet");
      assert.deepEqual(await s.releaseChunks({ lapsedBefore: now + 1000 }, "lapsed"), ["ep"]);
      const again = await s.leaseChunks("ep", "v", "w2", 9, 1000, now);
      assert.deepEqual(
        again.map((c) => [c.idx, c.attempts]),
        [
          [0, 2],
          [1, 2],
        ],
      );
      // Attempts reached maxAttempts: failed with the reason, and the invocation is failed by its coordinator.
      assert.deepEqual(await s.releaseChunks({ lapsedBefore: now + 1000 }, "lapsed twice"), []);
      assert.deepEqual(await s.chunkProgress(inv.id), {
        chunks: 2,
        done: 0,
        failed: "lapsed twice",
        speechSeconds: 20,
        doneSeconds: 0,
      });
      assert.deepEqual(await s.leaseChunks("ep", "v", "w3", 9, 1000, now), []);
    },
  );
}
