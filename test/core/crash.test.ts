import { test } from "node:test";
import assert from "node:assert/strict";
import { noopModelServer, serveProcess as serve, tempDir, waitFor } from "../helpers/server.js";

test("nothing lost: kill -9 the service with 50 invocations queued or running, restart, all end exactly once", async () => {
  const dataDir = tempDir("kk-crash-");
  let { child, api } = await serve(dataDir);
  try {
    await api.endpoint(
      "noop",
      { image: `local:${noopModelServer}`, environment: { NOOP_DELAY_MS: "150" } },
      { maxConcurrentInvocationsPerInstance: 2 },
    );
    const input = await api.put("input", "a.wav", Buffer.from("some audio"));
    const ids: string[] = [];
    for (let i = 0; i < 50; i++) {
      const r = await api.call("POST", "/v1/endpoints/noop/invocations", { inputLocation: input });
      assert.equal(r.status, 202);
      ids.push(r.body.inferenceId);
    }
    await waitFor(
      async () => (await api.ok("GET", "/v1/invocations?state=Succeeded")).invocations.length >= 4,
      20_000,
      "a few to finish",
    );
    const unfinished = (await api.ok("GET", "/v1/invocations?limit=100")).invocations.filter(
      (i: { state: string }) => i.state === "Queued" || i.state === "Running",
    ).length;
    const orphanPids: number[] = (await api.ok("GET", "/v1/endpoints/noop")).instances.map(
      (i: { pid: number }) => i.pid,
    );
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));

    ({ child, api } = await serve(dataDir));
    for (const id of ids) {
      const inv = await api.waitTerminal(id, 60_000);
      assert.equal(inv.state, "Succeeded", `${id}: ${JSON.stringify(inv.error)}`);
      const out = await api.getObject(inv.outputLocation);
      const failure = await api.getObject(inv.failureLocation);
      assert.equal(out.status, 200, "output document present");
      assert.equal(failure.status, 404, "and no failure document");
      assert.equal(JSON.parse(out.text).bytes, 10);
    }
    // The model servers the killed service left behind were stopped by the restart.
    for (const pid of orphanPids)
      assert.throws(() => process.kill(pid, 0), /ESRCH/, `orphan ${pid} still runs`);
    assert.ok(unfinished >= 30, `most were still queued or running at the kill (${unfinished})`);
  } finally {
    child.kill("SIGKILL");
  }
});
