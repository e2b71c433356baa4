/** Shared reads on the accept path (src/core/fresh-reads.ts): fewer round trips, never a stale answer. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { setImmediate as nextTurn } from "node:timers/promises";
import { FreshReads } from "../../src/core/fresh-reads.js";

test("callers of one turn share one read per key; each read starts after every caller asked", async () => {
  let version = 0;
  const sent: string[] = [];
  const reads = new FreshReads(async (key: string) => {
    sent.push(key);
    return `${key}@${version}`;
  });
  const first = [reads.get("a"), reads.get("a"), reads.get("b")];
  version = 1; // a write that completes after the callers asked, before the read is sent
  assert.deepEqual(await Promise.all(first), ["a@1", "a@1", "b@1"]);
  assert.deepEqual(sent, ["a", "b"], "one read per key");
});

test("a caller never joins a read already sent: it gets the next one", async () => {
  let version = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const reads = new FreshReads(async (key: string) => {
    const seen = version;
    await gate;
    return `${key}@${seen}`;
  });
  const early = reads.get("a");
  await nextTurn(); // the first read is now in flight
  version = 1;
  const late = reads.get("a");
  release();
  assert.equal(await early, "a@0");
  assert.equal(await late, "a@1", "the later caller sees the write made before it asked");
});

test("a failed read rejects every caller that shared it, and the next read is tried afresh", async () => {
  let fail = true;
  const reads = new FreshReads(async (key: string) => {
    if (fail) throw new Error(`no ${key}`);
    return key;
  });
  const results = await Promise.allSettled([reads.get("a"), reads.get("a")]);
  assert.deepEqual(
    results.map((r) => r.status),
    ["rejected", "rejected"],
  );
  fail = false;
  assert.equal(await reads.get("a"), "a");
});
