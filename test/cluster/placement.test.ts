import { test } from "node:test";
import assert from "node:assert/strict";
import { planPlacements, type VariantWant } from "../../src/cluster/placement.js";
import type { HostRecord, Placement } from "../../src/core/types.js";

// The placement decision is pure: hosts, current placements and wants in, a plan out.
type Host = Pick<HostRecord, "id" | "slots" | "gpus" | "models" | "serves">;
const host = (id: string, over: Partial<Host> = {}): Host => ({ id, slots: 4, gpus: 0, models: [], ...over });
const want = (over: Partial<VariantWant> = {}): VariantWant => ({
  endpoint: "ep",
  deployment: "d1",
  variant: "AllTraffic",
  desired: 1,
  gpu: false,
  ...over,
});
let n = 0;
const opts = (inService: (p: Placement) => boolean = () => true) => ({
  now: 1000,
  newId: () => `p${++n}`,
  inService,
});
const on = (plan: { add: Placement[] }) => plan.add.map((p) => p.host).sort();
const placed = (id: string, hostId: string, over: Partial<Placement> = {}): Placement => ({
  id,
  endpoint: "ep",
  deployment: "d1",
  variant: "AllTraffic",
  host: hostId,
  createdAt: 1,
  ...over,
});

test("placement: spreads a variant over hosts, then fills them", () => {
  const plan = planPlacements([host("a"), host("b")], [], [want({ desired: 3 })], opts());
  assert.deepEqual(on(plan), ["a", "a", "b"]);
  assert.deepEqual(plan.unplaced, []);
});

test("placement: respects slots and reports what no host has room for", () => {
  const plan = planPlacements(
    [host("a", { slots: 1 }), host("b", { slots: 1 })],
    [],
    [want({ desired: 3 })],
    opts(),
  );
  assert.deepEqual(on(plan), ["a", "b"]);
  assert.deepEqual(plan.unplaced, [{ endpoint: "ep", deployment: "d1", variant: "AllTraffic", missing: 1 }]);
});

test("placement: prefers the host with the model data cached, GPU models only on GPU hosts", () => {
  const hosts = [host("a"), host("b", { models: ["s3://m/model.tar.gz"] }), host("g", { gpus: 1 })];
  assert.deepEqual(on(planPlacements(hosts, [], [want({ model: "s3://m/model.tar.gz" })], opts())), ["b"]);
  assert.deepEqual(on(planPlacements(hosts, [], [want({ gpu: true, desired: 2 })], opts())), ["g", "g"]);
});

test("placement: a lost host's placements move to the survivors", () => {
  const current = [placed("x", "a"), placed("y", "gone")];
  const plan = planPlacements([host("a"), host("b")], current, [want({ desired: 2 })], opts());
  assert.deepEqual(
    plan.remove.map((p) => p.id),
    ["y"],
  );
  assert.deepEqual(on(plan), ["b"]);
});

test("placement: scale-in removes instances not yet InService first, then from the busiest host", () => {
  const current = [
    placed("a1", "a"),
    placed("a2", "a"),
    placed("b1", "b"),
    placed("b2", "b", { createdAt: 2 }),
  ];
  const pending = planPlacements(
    [host("a"), host("b")],
    current,
    [want({ desired: 3 })],
    opts((p) => p.id !== "a1"),
  );
  assert.deepEqual(
    pending.remove.map((p) => p.id),
    ["a1"],
  );
  const busiest = planPlacements(
    [host("a"), host("b")],
    [...current, placed("b3", "b")],
    [want({ desired: 3 })],
    opts(),
  );
  // a has 2, b has 3: both go from b, leaving the variant spread 2 and 1.
  assert.deepEqual(
    busiest.remove.map((p) => p.host),
    ["b", "b"],
  );
  assert.equal(busiest.add.length, 0);
});

test("placement: a deleted variant's placements go everywhere", () => {
  const plan = planPlacements([host("a")], [placed("x", "a")], [], opts());
  assert.deepEqual(
    plan.remove.map((p) => p.id),
    ["x"],
  );
});

test("placement: a dedicated host runs only its variant, and is chosen first for it", () => {
  const hosts = [host("general"), host("k8s-pod", { slots: 1, serves: "ep/AllTraffic" })];
  const other = want({ endpoint: "other", desired: 2 });
  const plan = planPlacements(hosts, [], [want({ desired: 1 }), other], opts());
  assert.deepEqual(
    plan.add.filter((p) => p.endpoint === "ep").map((p) => p.host),
    ["k8s-pod"],
  );
  assert.deepEqual(
    plan.add.filter((p) => p.endpoint === "other").map((p) => p.host),
    ["general", "general"],
  );
  // A placement of another variant found on a dedicated host (it was general before) is moved off it.
  const moved = planPlacements(hosts, [placed("x", "k8s-pod", { endpoint: "other" })], [other], opts());
  assert.deepEqual(
    moved.remove.map((p) => p.id),
    ["x"],
  );
  assert.deepEqual(on(moved), ["general", "general"]);
});

test("placement: an update's new deployment is placed beside the current one; a replaced one's placements go", () => {
  const hosts = [host("a"), host("b")];
  const current = [placed("old1", "a"), placed("old2", "b")];
  const update = planPlacements(
    hosts,
    current,
    [want({ desired: 2 }), want({ deployment: "d2", desired: 2 })],
    opts(),
  );
  assert.deepEqual(update.remove, []);
  assert.deepEqual(update.add.map((p) => [p.deployment, p.host]).sort(), [
    ["d2", "a"],
    ["d2", "b"],
  ]);
  // Promoted: only d2 is wanted; d1's placements are removed, d2's stay.
  const promoted = planPlacements(
    hosts,
    [...current, ...update.add],
    [want({ deployment: "d2", desired: 2 })],
    opts(),
  );
  assert.deepEqual(promoted.remove.map((p) => p.id).sort(), ["old1", "old2"]);
  assert.deepEqual(promoted.add, []);
});
