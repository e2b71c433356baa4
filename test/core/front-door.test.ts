/** The front door first (src/core/front-door.ts): a lease waits a short slice while accepts crowd a saturated loop. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { FrontDoor } from "../../src/core/front-door.js";

/** `n` accepts held in flight until the returned function is called. */
function holdAccepts(door: FrontDoor, n: number): () => Promise<void> {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const accepts = Array.from({ length: n }, () => door.through(() => gate));
  return async () => {
    release();
    await Promise.all(accepts);
  };
}

/** Whether `p` has settled by the next macrotask. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(() => (done = true));
  await sleep(0);
  return done;
}

test("a lease goes at once while the loop is not saturated, however many accepts are in flight", async () => {
  const door = new FrontDoor({ crowd: 2, saturated: 0.9, waitMs: 10_000, loopBusy: () => false });
  const release = holdAccepts(door, 10);
  assert.equal(await settled(door.quiet()), true);
  await release();
});

test("a lease waits one slice while accepts crowd a saturated loop: work still starts during an endless burst", async () => {
  const door = new FrontDoor({ crowd: 2, saturated: 0.9, waitMs: 40, loopBusy: () => true });
  assert.equal(await settled(door.quiet()), true, "two in flight or fewer: not crowded");
  const release = holdAccepts(door, 5);
  const t0 = performance.now();
  const waiting = door.quiet();
  assert.equal(await settled(waiting), false, "five accepts in flight on a saturated loop: the lease waits");
  await waiting;
  const waited = performance.now() - t0;
  assert.ok(waited >= 35, `waited ${waited.toFixed(1)} ms, expected about 40`);
  assert.ok(door.busy(), "still crowded: the lease went after its slice");
  await release();
  assert.equal(await settled(door.quiet()), true, "the accepts are answered: no wait");
});

test("a failed accept leaves the door, like an answered one", async () => {
  const door = new FrontDoor({ crowd: 0, saturated: 0.9, waitMs: 10_000, loopBusy: () => true });
  await assert.rejects(
    door.through(async () => {
      assert.equal(door.busy(), true, "one accept in flight, crowd 0");
      throw new Error("bad input");
    }),
    /bad input/,
  );
  assert.equal(door.busy(), false);
});

test("the loop's own measure: saturated while it spins, not after it idles", async () => {
  const door = new FrontDoor({ crowd: 0, saturated: 0.9, waitMs: 10_000 });
  const release = holdAccepts(door, 1);
  await sleep(80); // an idle window
  assert.equal(door.busy(), false, "an idle loop is not saturated");
  // Keep the loop busy for > 50 ms in short synchronous turns (as a burst of requests would).
  const until = performance.now() + 120;
  while (performance.now() < until) {
    const turn = performance.now() + 10;
    while (performance.now() < turn);
    await new Promise((r) => setImmediate(r));
  }
  assert.equal(door.busy(), true, "a loop busy for the last window is saturated");
  await release();
});
