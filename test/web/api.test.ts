import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { readSse } from "../../src/notify/index.js";
import { noopModelServer, startTestServer, waitFor } from "../helpers/server.js";
import { testdata } from "../helpers/fixtures.js";

/** Reads a server-sent event stream into `events` until aborted. */
function follow(url: string, abort: AbortController) {
  const events: { event: string; data: any }[] = [];
  const done = (async () => {
    const res = await fetch(url, { headers: { accept: "text/event-stream" }, signal: abort.signal });
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/event-stream/);
    try {
      for await (const e of readSse(res.body!)) events.push({ event: e.event, data: JSON.parse(e.data) });
    } catch (e) {
      if (!abort.signal.aborted) throw e;
    }
  })();
  return { events, done };
}

test("the native API gives the dashboard what it shows", async (t) => {
  const k = await startTestServer();
  t.after(() => k.close());
  // A slow model server, so that Queued and Running both last long enough to be seen.
  await k.api.endpoint(
    "slow",
    { image: `local:${noopModelServer}`, environment: { NOOP_DELAY_MS: "1500" } },
    { initialInstanceCount: 1, maxConcurrentInvocationsPerInstance: 1 },
  );
  const input = await k.api.put("kikitori", "in/jfk.wav", readFileSync(testdata("jfk.wav")), "audio/wav");

  await t.test("GET /v1/invocations as an event stream: snapshot, then each change, live", async () => {
    const abort = new AbortController();
    const list = follow(`${k.url}/v1/invocations?endpoint=slow&limit=10`, abort);
    await waitFor(() => list.events.length > 0, 5000, "snapshot");
    assert.deepEqual(list.events[0], { event: "snapshot", data: { invocations: [] } });
    const invoke = async () =>
      (await k.api.ok("POST", "/v1/endpoints/slow/invocations", { inputLocation: input })).inferenceId;
    const [a, b, c] = [await invoke(), await invoke(), await invoke()];
    const statesOf = (id: string) =>
      list.events
        .filter((e) => e.event === "invocation" && e.data.inferenceId === id)
        .map((e) => e.data.state);
    await waitFor(() => statesOf(c).at(-1) === "Succeeded", 30_000, "c Succeeded in the stream");
    abort.abort();
    await list.done;
    // Both went through every state, in order, each state reported once per change.
    for (const id of [a, b, c]) {
      const seen = statesOf(id).filter((s, i, all) => s !== all[i - 1]);
      assert.deepEqual(seen, ["Queued", "Running", "Succeeded"], `${id}: ${statesOf(id)}`);
    }
    // c waited behind b (a was running): its queue position was 2, then 1.
    const positions = list.events
      .filter((e) => e.event === "invocation" && e.data.inferenceId === c && e.data.state === "Queued")
      .map((e) => e.data.queuePosition);
    assert.deepEqual(positions.slice(0, 2), [2, 1]);
  });

  await t.test("the stream's filter: an invocation that leaves it is removed", async () => {
    const abort = new AbortController();
    const queued = follow(`${k.url}/v1/invocations?state=Queued`, abort);
    // An endpoint with no instance keeps its work queued until it is cancelled.
    await k.api.endpoint("idle", { image: `local:${noopModelServer}` }, { initialInstanceCount: 0 });
    const id = (await k.api.ok("POST", "/v1/endpoints/idle/invocations", { inputLocation: input }))
      .inferenceId;
    await waitFor(
      () => queued.events.some((e) => e.event === "invocation" && e.data.inferenceId === id),
      5000,
      "queued one appears",
    );
    await k.api.ok("POST", `/v1/invocations/${id}/cancel`);
    await waitFor(
      () => queued.events.some((e) => e.event === "removed" && e.data.inferenceId === id),
      5000,
      "cancelled one removed",
    );
    abort.abort();
    await queued.done;
    assert.equal((await k.api.ok("GET", `/v1/invocations/${id}`)).state, "Cancelled");
  });

  await t.test("GET /v1/endpoints/{name}/events: detail, 1-second samples, scaling activities", async () => {
    const abort = new AbortController();
    const ep = follow(`${k.url}/v1/endpoints/slow/events?historySeconds=60`, abort);
    await waitFor(
      () => ep.events.filter((e) => e.event === "samples").length >= 2,
      10_000,
      "two sample events",
    );
    await k.api.ok("PUT", "/v1/endpoints/slow/variants/AllTraffic/scaling", {
      minCapacity: 0,
      maxCapacity: 2,
    });
    await waitFor(
      () => ep.events.some((e) => e.event === "endpoint" && e.data.scaling[0]?.target?.MaxCapacity === 2),
      10_000,
      "the new scalable target in an endpoint event",
    );
    abort.abort();
    await ep.done;
    const detail = ep.events.find((e) => e.event === "endpoint")!.data;
    assert.equal(detail.name, "slow");
    assert.equal(detail.models[0].image, `local:${noopModelServer}`);
    assert.equal(detail.instances.length, 1);
    const samples = ep.events.filter((e) => e.event === "samples").flatMap((e) => e.data);
    const times = samples.map((s: any) => s.time);
    assert.deepEqual(
      times,
      [...times].sort((x, y) => x - y),
      "samples in time order, none repeated",
    );
    assert.equal(new Set(times).size, times.length);
    assert.equal(samples.at(-1).values.InstanceCount, 1);
    assert.ok("ApproximateBacklogSizePerInstance" in samples.at(-1).values);
    assert.equal((await fetch(`${k.url}/v1/endpoints/nope/events`)).status, 404);
  });

  await t.test("result in another format: refused for a result that is not a transcript", async () => {
    const { invocations } = await k.api.ok("GET", "/v1/invocations?endpoint=slow&state=Succeeded&limit=1");
    const r = await k.api.call("GET", `/v1/invocations/${invocations[0].inferenceId}/result?format=srt`);
    assert.equal(r.status, 400);
    assert.match(r.body.error.message, /^format: .*not a json or verbose_json transcript/);
    assert.equal(
      (await k.api.call("GET", `/v1/invocations/${invocations[0].inferenceId}/result?format=doc`)).status,
      400,
    );
  });

  await t.test("objects: one byte range (a media player seeks with them)", async () => {
    const whole = readFileSync(testdata("jfk.wav"));
    const res = await fetch(`${k.url}/v1/objects/kikitori/in/jfk.wav`, {
      headers: { range: "bytes=100-199" },
    });
    assert.equal(res.status, 206);
    assert.equal(res.headers.get("content-range"), `bytes 100-199/${whole.length}`);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), whole.subarray(100, 200));
    const all = await fetch(`${k.url}/v1/objects/kikitori/in/jfk.wav`);
    assert.equal(all.headers.get("accept-ranges"), "bytes");
    assert.equal(Number(all.headers.get("content-length")), whole.length);
  });

  await t.test("GET /v1/model-cache lists the cached weights without server paths", async () => {
    const { models } = await k.api.ok("GET", "/v1/model-cache");
    const tiny = models.find((m: any) => m.name === k.config.defaultModel);
    assert.ok(tiny, JSON.stringify(models));
    assert.equal(tiny.default, true);
    assert.ok(tiny.bytes > 1_000_000);
    assert.ok(!JSON.stringify(models).includes(k.config.modelsDir));
  });

  await t.test("GET / is the page for a browser, S3's ListBuckets for an AWS client", async () => {
    const page = await fetch(`${k.url}/`, { headers: { accept: "text/html,application/xhtml+xml" } });
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-security-policy") ?? "", /default-src 'self'/);
    const html = await page.text();
    assert.match(html, /<script type="module" crossorigin src="\/ui\/assets\/index-[\w-]+\.js">/);
    const s3 = await fetch(`${k.url}/`);
    assert.match(await s3.text(), /<ListAllMyBucketsResult/);
    const asset = /src="(\/ui\/assets\/[^"]+)"/.exec(html)![1]!;
    const js = await fetch(k.url + asset, { headers: { "accept-encoding": "br, gzip" } });
    assert.equal(js.headers.get("content-encoding"), "br");
    assert.match(js.headers.get("cache-control") ?? "", /immutable/);
    assert.ok([403, 404].includes((await fetch(`${k.url}/ui/assets/..%2f..%2fpackage.json`)).status));
  });
});
