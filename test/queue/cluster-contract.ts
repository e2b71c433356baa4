import assert from "node:assert/strict";
import type { HostRecord } from "../../src/core/types.js";
import type { TestDatabase } from "../helpers/backends.js";
import { withStores } from "./state-contract.js";

const hostRecord = (id: string, over: Partial<HostRecord> = {}): HostRecord => ({
  id,
  name: id.split("/")[0]!,
  slots: 4,
  cpus: 2,
  gpus: 0,
  models: [],
  state: "Ready",
  startedAt: 1000,
  heartbeatAt: 1000,
  ...over,
});

/** The cluster part of the StateStore (src/cluster): hosts, desired counts, placements, on every backend. */
export function clusterStoreContract(name: string, fresh: () => Promise<TestDatabase>): void {
  const t = withStores(`cluster ${name}`, fresh);

  t(
    "hosts: register, heartbeat replaces every field but the start, listed in start order",
    async ({ state: s }) => {
      await s.upsertHost(hostRecord("b/2/2000", { startedAt: 2000, heartbeatAt: 2000 }));
      await s.upsertHost(
        hostRecord("a/1/1000", {
          address: "http://10.0.0.2:7601",
          token: "secret",
          models: ["s3://m/model.tar.gz", "ggml-tiny.en.bin"],
          serves: "whisper/AllTraffic",
          gpus: 1,
        }),
      );
      await s.upsertHost(
        hostRecord("b/2/2000", { startedAt: 9999, heartbeatAt: 2500, state: "Draining", slots: 1 }),
      );
      const hosts = await s.listHosts();
      assert.deepEqual(
        hosts.map((h) => h.id),
        ["a/1/1000", "b/2/2000"],
      );
      assert.deepEqual(hosts[0], {
        ...hostRecord("a/1/1000"),
        address: "http://10.0.0.2:7601",
        token: "secret",
        models: ["s3://m/model.tar.gz", "ggml-tiny.en.bin"],
        serves: "whisper/AllTraffic",
        gpus: 1,
      });
      assert.equal(hosts[1]!.state, "Draining");
      assert.equal(hosts[1]!.slots, 1);
      assert.equal(hosts[1]!.heartbeatAt, 2500);
      assert.equal(hosts[1]!.startedAt, 2000, "a heartbeat does not move the start");
      assert.equal(hosts[1]!.serves, undefined);
    },
  );

  t("hosts: lost only when the heartbeat is still older than the decision saw", async ({ state: s }) => {
    await s.upsertHost(hostRecord("h/1/1", { heartbeatAt: 1000 }));
    assert.equal(await s.markHostGone("h/1/1", 1000), false, "heartbeat not older than the cut-off");
    assert.equal(await s.markHostGone("h/1/1", 1001), true);
    assert.equal((await s.listHosts())[0]!.state, "Gone");
    assert.equal(await s.markHostGone("h/1/1", 5000), false, "Gone already");
    // A host that comes back heartbeats itself Ready again; a stale decision does not take it down.
    await s.upsertHost(hostRecord("h/1/1", { heartbeatAt: 6000 }));
    assert.equal(await s.markHostGone("h/1/1", 5000), false);
    assert.equal((await s.listHosts())[0]!.state, "Ready");
    assert.equal(await s.markHostGone("missing", 5000), false);
  });

  t("desired counts: set, replaced, listed per endpoint", async ({ state: s }) => {
    await s.setDesired("ep", "B", 2, 1);
    await s.setDesired("ep", "A", 1, 1);
    await s.setDesired("other", "A", 5, 1);
    await s.setDesired("ep", "A", 0, 2);
    assert.deepEqual(await s.listDesired("ep"), [
      { endpoint: "ep", variant: "A", desired: 0, updatedAt: 2 },
      { endpoint: "ep", variant: "B", desired: 2, updatedAt: 1 },
    ]);
    assert.equal((await s.listDesired()).length, 3);
    assert.deepEqual(await s.listDesired("none"), []);
  });

  t(
    "placements: added and removed together, repeating a plan changes nothing, filtered",
    async ({ state: s }) => {
      const p = (id: string, host: string, endpoint = "ep") => ({
        id,
        endpoint,
        deployment: "d1",
        variant: "AllTraffic",
        host,
        createdAt: Number(id.slice(1)),
      });
      await s.applyPlacements({ add: [p("p1", "h1"), p("p2", "h2"), p("p3", "h1", "other")], remove: [] });
      // A second leader repeating the same pass: the same ids again, a removal of one already gone.
      await s.applyPlacements({ add: [p("p1", "h1"), p("p4", "h2")], remove: ["p2", "missing"] });
      await s.applyPlacements({ add: [], remove: ["p2"] });
      assert.deepEqual(
        (await s.listPlacements({})).map((x) => x.id),
        ["p1", "p3", "p4"],
      );
      assert.deepEqual(await s.listPlacements({ host: "h1", endpoint: "ep" }), [p("p1", "h1")]);
      assert.deepEqual(
        (await s.listPlacements({ host: "h2" })).map((x) => x.id),
        ["p4"],
      );
      assert.deepEqual(
        (await s.listPlacements({ endpoint: "other" })).map((x) => x.id),
        ["p3"],
      );
    },
  );

  t("instances: the placement and the relay address travel with the record", async ({ state: s }) => {
    const rec = {
      id: "i-1",
      endpoint: "ep",
      variant: "AllTraffic",
      host: "w1",
      node: "w1/10/1000",
      deployment: "d1",
      placement: "p1",
      state: "Pending" as const,
      startedAt: 1,
    };
    await s.upsertInstance(rec);
    await s.upsertInstance({
      ...rec,
      state: "InService",
      port: 4000,
      address: "http://10.0.0.3:7601/instances/i-1",
    });
    const [got] = await s.listInstances({ endpoint: "ep", live: true });
    assert.equal(got!.placement, "p1");
    assert.equal(got!.deployment, "d1");
    assert.equal(got!.address, "http://10.0.0.3:7601/instances/i-1");
    assert.equal(got!.state, "InService");
  });
}
