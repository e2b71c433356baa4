import assert from "node:assert/strict";
import type { TestDatabase } from "../helpers/backends.js";
import { newInvocation, withStores } from "./state-contract.js";

const job = (id: string, over: { principal?: string; names?: string[]; createdAt?: number } = {}) => ({
  id,
  endpoint: "ep",
  names: over.names ?? ["a.wav", "b.wav", "c.wav"],
  principal: over.principal,
  createdAt: over.createdAt ?? 1000,
});
const filesOf = (jobId: string, n: number) =>
  Array.from({ length: n }, (_, i) => newInvocation({ id: `${jobId}-${i}`, jobId, jobIndex: i }));

/** Multi-file jobs (the JobStore part of the StateStore), on every backend. */
export function jobStoreContract(name: string, fresh: () => Promise<TestDatabase>): void {
  const t = withStores(`jobs ${name}`, fresh);

  t(
    "a job and its files commit together; the files are ordinary queued invocations",
    async ({ state: s }) => {
      const { job: j, files } = await s.createJob(job("j1", { principal: "key/1" }), filesOf("j1", 3));
      assert.equal(j.id, "j1");
      assert.deepEqual(j.names, ["a.wav", "b.wav", "c.wav"]);
      assert.equal(j.principal, "key/1");
      assert.ok(j.seq > 0);
      assert.deepEqual(
        files.map((f) => [f.id, f.jobId, f.jobIndex, f.state]),
        [0, 1, 2].map((i) => [`j1-${i}`, "j1", i, "Queued"]),
      );
      assert.deepEqual(await s.getJob("j1"), j);
      assert.equal(await s.getJob("nope"), undefined);
      assert.deepEqual(
        (await s.jobFiles("j1")).map((f) => f.id),
        ["j1-0", "j1-1", "j1-2"],
      );
      // Leased, finished and counted like any other invocation; one enqueued alone has no job.
      const single = await s.enqueue(newInvocation());
      assert.equal(single.jobId, undefined);
      const leased = await s.lease("ep", "w", 2, 30_000, Date.now());
      assert.deepEqual(
        leased.map((f) => f.id),
        ["j1-0", "j1-1"],
      );
      assert.ok(
        await s.finish("j1-0", { state: "Succeeded" }, { from: ["Running"], owner: "w" }, Date.now()),
      );
      const counts = await s.jobCounts(["j1", "nope"]);
      assert.deepEqual(counts.get("j1"), { Succeeded: 1, Running: 1, Queued: 1 });
      assert.equal(counts.has("nope"), false);
      assert.deepEqual(await s.jobCounts([]), new Map());
    },
  );

  t("all or nothing: a job one of whose files cannot be stored stores nothing", async ({ state: s }) => {
    await s.enqueue(newInvocation({ id: "taken-1" }));
    const files = filesOf("taken", 3);
    await assert.rejects(s.createJob(job("taken"), files), /already exists/);
    assert.equal(await s.getJob("taken"), undefined);
    assert.deepEqual(await s.jobFiles("taken"), []);
    for (const f of files.filter((f) => f.id !== "taken-1"))
      assert.equal(await s.getInvocation(f.id), undefined);
    assert.deepEqual(
      (await s.listInvocations({})).map((i) => i.id),
      ["taken-1"],
    );
    // A duplicate job id likewise.
    await s.createJob(job("dup"), filesOf("dup", 1));
    await assert.rejects(
      s.createJob(job("dup"), [newInvocation({ jobId: "dup", jobIndex: 0 })]),
      /already exists/,
    );
    assert.equal((await s.jobFiles("dup")).length, 1);
  });

  t("a job of many files: one commit, every file in order", async ({ state: s }) => {
    // Past PostgreSQL's parameters per statement for one multi-row INSERT (65535 / 20 columns).
    const { files } = await s.createJob(job("big", { names: [] }), filesOf("big", 3500));
    assert.equal(files.length, 3500);
    const stored = await s.jobFiles("big");
    assert.equal(stored.length, 3500);
    assert.ok(stored.every((f, i) => f.jobIndex === i && f.id === `big-${i}`));
    assert.equal((await s.backlog("ep")).queued, 3500);
  });

  t("jobs list newest first, by principal, in pages", async ({ state: s }) => {
    for (const [id, principal] of [
      ["a", "key/1"],
      ["b", "key/2"],
      ["c", "key/1"],
      ["d", undefined],
    ] as const)
      await s.createJob(job(id, { principal }), filesOf(id, 1));
    assert.deepEqual(
      (await s.listJobs({})).map((j) => j.id),
      ["d", "c", "b", "a"],
    );
    assert.deepEqual(
      (await s.listJobs({ principal: "key/1" })).map((j) => j.id),
      ["c", "a"],
    );
    const first = await s.listJobs({ limit: 2 });
    assert.deepEqual(
      first.map((j) => j.id),
      ["d", "c"],
    );
    assert.deepEqual(
      (await s.listJobs({ limit: 2, beforeSeq: first.at(-1)!.seq })).map((j) => j.id),
      ["b", "a"],
    );
  });
}
