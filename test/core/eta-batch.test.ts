/**
 * Estimated finish times against the real finish, on a real kikitori (HTTP, model server as a process) on
 * each backend. The model server works at a known speed (test/fixtures/noop-model-server.mjs with
 * NOOP_BYTES_PER_SECOND: each request takes its body's size at that rate), so the estimate learns a pace
 * that holds: a few invocations run first, then a batch of inputs of different sizes is queued at once and
 * each one's ETA, read right after, is compared with when it really finished (±30 % of the time ahead);
 * then the same at zero instances, where the estimate must count the observed cold start.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { forEachBackend } from "../helpers/backends.js";
import { noopModelServer, startTestServer, waitFor } from "../helpers/server.js";

const BYTES_PER_SECOND = 40_000;
const WARMUP = [40_000, 40_000, 40_000];
const BATCH = [30_000, 50_000, 20_000, 60_000, 40_000, 30_000, 50_000, 40_000];

forEachBackend((backend) => {
  test(`${backend}: the ETA of each invocation of a queued batch is within ±30 % of its real finish`, async (t) => {
    const k = await startTestServer({}, backend);
    try {
      await k.api.endpoint("eta", {
        image: `local:${noopModelServer}`,
        environment: { NOOP_BYTES_PER_SECOND: String(BYTES_PER_SECOND) },
      });
      const invoke = async (bytes: number, i: number) => {
        const input = await k.api.put("kikitori", `eta/${bytes}-${i}.bin`, Buffer.alloc(bytes, i));
        return (await k.api.ok("POST", "/v1/endpoints/eta/invocations", { inputLocation: input }))
          .inferenceId as string;
      };

      const first = await invoke(WARMUP[0]!, 0);
      const view = await k.api.ok("GET", `/v1/invocations/${first}`);
      assert.equal(view.eta, undefined, "no estimate before the endpoint has finished anything");
      await k.api.waitTerminal(first);
      for (const [i, bytes] of WARMUP.slice(1).entries())
        await k.api.waitTerminal(await invoke(bytes, i + 1));

      // Upload first, so that the batch is enqueued within a few milliseconds.
      const inputs = await Promise.all(
        BATCH.map((bytes, i) => k.api.put("kikitori", `eta/batch-${i}.bin`, Buffer.alloc(bytes, i))),
      );
      const ids: string[] = [];
      for (const inputLocation of inputs)
        ids.push((await k.api.ok("POST", "/v1/endpoints/eta/invocations", { inputLocation })).inferenceId);
      const estimates = [];
      for (const id of ids) {
        const readAt = Date.now();
        const v = await k.api.ok("GET", `/v1/invocations/${id}`);
        assert.ok(v.eta, `${id} (${v.state}) has an estimate`);
        const finishAt = Date.parse(v.eta);
        assert.ok(finishAt >= readAt - 1000, `${v.eta} is not in the past`);
        estimates.push({ id, readAt, finishAt, state: v.state });
      }
      // The last one's queued event carries the same kind of estimate.
      const events = await fetch(`${k.url}/v1/invocations/${ids.at(-1)}/events`, {
        headers: k.api.headers(),
      });
      const reader = events.body!.getReader();
      const firstEvent = new TextDecoder().decode((await reader.read()).value);
      await reader.cancel();
      assert.match(firstEvent, /event: queued/);
      assert.match(firstEvent, /"eta":"\d{4}-\d\d-\d\dT[\d:.]+Z"/);

      const rows = [];
      for (const e of estimates) {
        const done = await k.api.waitTerminal(e.id);
        assert.equal(done.state, "Succeeded");
        assert.equal(done.eta, undefined, "a finished invocation has no estimate");
        const actual = Date.parse(done.timing.finishedAt);
        const ahead = actual - e.readAt;
        rows.push({ ...e, actual, ahead, error: (e.finishAt - actual) / ahead });
      }
      const table = rows
        .map((r) => `${r.state} ahead ${r.ahead} ms, estimate off by ${(100 * r.error).toFixed(0)} %`)
        .join("\n");
      for (const line of table.split("\n")) t.diagnostic(line);
      // Those that finish within a second of being read are at the mercy of a loaded machine's scheduling.
      const judged = rows.filter((r) => r.ahead >= 1000);
      assert.ok(judged.length >= 5, `most of the batch lies ahead:\n${table}`);
      for (const r of judged) assert.ok(Math.abs(r.error) <= 0.3, `within ±30 %:\n${table}`);
    } finally {
      await k.close();
    }
  });
});

forEachBackend((backend) => {
  test(`${backend}: at zero instances the ETA counts the observed cold start`, async (t) => {
    const k = await startTestServer({}, backend);
    try {
      // The model server answers /ping 2.5 s after it starts: a cold start of known length.
      await k.api.endpoint("cold", {
        image: `local:${noopModelServer}`,
        environment: { NOOP_BYTES_PER_SECOND: String(BYTES_PER_SECOND), NOOP_STARTUP_MS: "2500" },
      });
      const invoke = async (bytes: number, name: string) => {
        const inputLocation = await k.api.put("kikitori", `cold/${name}.bin`, Buffer.alloc(bytes, 1));
        return (await k.api.ok("POST", "/v1/endpoints/cold/invocations", { inputLocation }))
          .inferenceId as string;
      };
      for (const [i, bytes] of WARMUP.entries()) await k.api.waitTerminal(await invoke(bytes, `warm-${i}`));
      await k.api.scaleFromZero("cold", 1);
      await waitFor(async () => k.manager.instancesOf("cold").length === 0, 30_000, "scaled in to zero", 100);

      const ids = [];
      for (const [i, bytes] of [40_000, 40_000, 40_000].entries())
        ids.push(await invoke(bytes, `batch-${i}`));
      const rows = [];
      for (const id of ids) {
        const readAt = Date.now();
        const v = await k.api.ok("GET", `/v1/invocations/${id}`);
        assert.ok(v.eta, `${id} has an estimate`);
        rows.push({ id, readAt, finishAt: Date.parse(v.eta) });
      }
      const errors: number[] = [];
      for (const r of rows) {
        const actual = Date.parse((await k.api.waitTerminal(r.id)).timing.finishedAt);
        const ahead = actual - r.readAt;
        errors.push((r.finishAt - actual) / ahead);
        t.diagnostic(`ahead ${ahead} ms, estimate off by ${(100 * errors.at(-1)!).toFixed(0)} %`);
        // Without the cold start the first estimate would be 1 s against more than 3.5 s.
        assert.ok(ahead > 3000, `the cold start lies ahead: ${ahead} ms`);
      }
      for (const e of errors) assert.ok(Math.abs(e) <= 0.3, `within ±30 %: ${errors.join(", ")}`);
    } finally {
      await k.close();
    }
  });
});
