import { test } from "node:test";
import assert from "node:assert/strict";
import type { StateStore, NewInvocation } from "../../src/queue/types.js";

let n = 0;
function newInvocation(over: Partial<NewInvocation> = {}): NewInvocation {
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

/** The behaviour every StateStore must show (SQLite now, PostgreSQL later). */
export function stateStoreContract(name: string, make: () => Promise<StateStore>): void {
  const withStore = (title: string, fn: (s: StateStore) => Promise<void>) =>
    test(`${name}: ${title}`, async () => {
      const s = await make();
      try {
        await fn(s);
      } finally {
        await s.close();
      }
    });

  withStore("enqueue is durable and rejects a duplicate id", async (s) => {
    const inv = await s.enqueue(newInvocation({ id: "dup" }));
    assert.equal(inv.state, "Queued");
    assert.equal(inv.attempts, 0);
    assert.equal((await s.getInvocation("dup"))?.inputLocation, "s3://bucket/in.wav");
    await assert.rejects(s.enqueue(newInvocation({ id: "dup" })), /already exists/);
  });

  withStore("concurrent enqueues all become durable; a duplicate among them fails alone", async (s) => {
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

  withStore("queue positions count only queued work of the same endpoint, in order", async (s) => {
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
  });

  withStore("a lease hands each invocation to one owner, oldest first, up to max", async (s) => {
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push((await s.enqueue(newInvocation())).id);
    const now = Date.now();
    const [first, second] = await Promise.all([
      s.lease("ep", "w1", 3, 10_000, now),
      s.lease("ep", "w2", 3, 10_000, now),
    ]);
    const got = [...first, ...second].map((i) => i.id);
    assert.equal(new Set(got).size, 5, "no invocation leased twice");
    assert.deepEqual(
      first.map((i) => i.id),
      ids.slice(0, 3),
    );
    assert.ok(first.every((i) => i.state === "Running" && i.attempts === 1 && i.leaseOwner === "w1"));
    assert.deepEqual(await s.lease("ep", "w3", 3, 10_000, now), []);
    const b = await s.backlog("ep");
    assert.deepEqual([b.queued, b.running], [0, 5]);
  });

  withStore("heartbeats extend the lease for the owner only and report cancel requests", async (s) => {
    const inv = await s.enqueue(newInvocation());
    const now = Date.now();
    await s.lease("ep", "w1", 1, 1000, now);
    assert.equal(await s.heartbeat(inv.id, "w2", 1000, now), "lost");
    assert.equal(await s.heartbeat(inv.id, "w1", 5000, now, { processedSeconds: 3, totalSeconds: 10 }), "ok");
    const cur = await s.getInvocation(inv.id);
    assert.equal(cur?.leaseExpiresAt, now + 5000);
    assert.equal(cur?.progressSeconds, 3);
    assert.equal(await s.requestCancel(inv.id), true);
    assert.equal(await s.heartbeat(inv.id, "w1", 5000, now), "cancel-requested");
  });

  withStore("lapsed leases are found and requeued; finish applies once, with its guard", async (s) => {
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
    assert.equal(await s.requeue(inv.id, { from: ["Running"], owner: "w1" }), true);
    const [again] = await s.lease("ep", "w2", 1, 1000, now);
    assert.equal(again?.attempts, 2);
    assert.equal(
      await s.finish(inv.id, { state: "Succeeded" }, { from: ["Running"], owner: "w1" }, now),
      false,
      "stale owner",
    );
    assert.equal(
      await s.finish(
        inv.id,
        { state: "Succeeded", modelTimeMs: 12 },
        { from: ["Running"], owner: "w2" },
        now,
      ),
      true,
    );
    assert.equal(
      await s.finish(inv.id, { state: "Failed" }, { from: ["Running"], owner: "w2" }, now),
      false,
      "already terminal",
    );
    const done = await s.getInvocation(inv.id);
    assert.equal(done?.state, "Succeeded");
    assert.equal(done?.modelTimeMs, 12);
    const events = await s.pendingEvents(100);
    assert.equal(
      events.filter((e) => e.invocationId === inv.id).length,
      1,
      "one outbox event per terminal change",
    );
    await s.markEventsDelivered(events.map((e) => e.id));
    assert.deepEqual(await s.pendingEvents(100), []);
  });

  withStore("queued invocations past their TTL are found and never leased", async (s) => {
    const old = await s.enqueue(newInvocation({ createdAt: Date.now() - 120_000, requestTtlSeconds: 60 }));
    const fresh = await s.enqueue(newInvocation());
    const expired = await s.findExpiredQueued(Date.now(), 10);
    assert.deepEqual(
      expired.map((i) => i.id),
      [old.id],
    );
    const leased = await s.lease("ep", "w1", 10, 1000, Date.now());
    assert.deepEqual(
      leased.map((i) => i.id),
      [fresh.id],
    );
    assert.equal(
      await s.finish(
        old.id,
        { state: "Expired", error: { code: "RequestExpired", message: "ttl" } },
        { from: ["Queued"] },
        Date.now(),
      ),
      true,
    );
    assert.equal((await s.getInvocation(old.id))?.error?.code, "RequestExpired");
  });
}
