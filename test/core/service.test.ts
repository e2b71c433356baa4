import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import type { Kikitori } from "../../src/main.js";
import { startTestServer, noopModelServer, waitFor } from "../helpers/server.js";

// These tests use a no-op model server (a real process honouring the container contract) so they test the
// platform: queue, leases, instances, results. Transcription itself is tested with real Whisper elsewhere.
async function putDirect(k: Kikitori, bucket: string, key: string, data: Buffer) {
  await k.service.objects.putObject(bucket, key, data);
  return `s3://${bucket}/${key}`;
}

const noop = (env: Record<string, string> = {}) => ({ image: `local:${noopModelServer}`, environment: env });

test("an invocation flows through queue, instance and model server to its output location", async () => {
  const k = await startTestServer();
  try {
    await k.api.endpoint("noop", noop());
    const audio = Buffer.from("RIFF....fake audio bytes");
    const input = await k.api.put("input", "clips/a.wav", audio, "audio/wav");
    const r = await k.api.call("POST", "/v1/endpoints/noop/invocations", {
      inputLocation: input,
      contentType: "audio/wav",
      options: { language: "ja", format: "srt", prompt: "a, b" },
    });
    assert.equal(r.status, 202);
    assert.match(r.body.outputLocation, /^s3:\/\/kikitori\/async-output\/.+\.out$/);
    assert.match(r.body.failureLocation, /-error\.out$/);
    const done = await k.api.waitTerminal(r.body.inferenceId);
    assert.equal(done.state, "Succeeded");
    assert.equal(done.attempts, 1);
    const out = JSON.parse((await k.api.getObject(done.outputLocation)).text);
    assert.equal(
      out.sha256,
      createHash("sha256").update(audio).digest("hex"),
      "the model got the input, byte for byte",
    );
    assert.equal(out.contentType, "audio/wav");
    assert.equal(out.customAttributes, "language=ja,prompt=a%2C%20b,format=srt");
    assert.equal((await k.api.getObject(done.failureLocation)).status, 404, "no failure document");
  } finally {
    await k.close();
  }
});

test("bad requests are refused at submit with a reason naming the field", async () => {
  const k = await startTestServer({ maxInputBytes: 1000 });
  try {
    await k.api.endpoint("noop", noop());
    const cases: [unknown, number, RegExp][] = [
      [
        { inputLocation: "s3://input/missing.wav" },
        400,
        /InputLocation: no object at s3:\/\/input\/missing\.wav/,
      ],
      [{ inputLocation: await k.api.put("input", "empty.wav", Buffer.alloc(0)) }, 400, /empty \(0 bytes\)/],
      [
        { inputLocation: await putDirect(k, "input", "big.wav", Buffer.alloc(1001)) },
        413,
        /1001 bytes; the limit is 1000/,
      ],
      [{ inputLocation: "http://example.com/x.wav" }, 400, /InputLocation: Not an S3 URL/],
      [
        { inputLocation: await k.api.put("input", "ok.wav", Buffer.from("x")), requestTtlSeconds: 5 },
        400,
        /RequestTTLSeconds: must be an integer from 60 to 21600/,
      ],
      [
        { inputLocation: "s3://input/ok.wav", invocationTimeoutSeconds: 7200 },
        400,
        /InvocationTimeoutSeconds/,
      ],
      [{ inputLocation: "s3://input/ok.wav", options: { format: "docx" } }, 400, /format/],
      [{}, 400, /inputLocation/],
    ];
    for (const [body, status, message] of cases) {
      const r = await k.api.call("POST", "/v1/endpoints/noop/invocations", body);
      assert.equal(r.status, status, JSON.stringify(body));
      assert.match(r.body.error.message, message);
    }
    const missing = await k.api.call("POST", "/v1/endpoints/nope/invocations", {
      inputLocation: "s3://input/ok.wav",
    });
    assert.equal(missing.status, 404);
    assert.match(missing.body.error.message, /Endpoint "nope" does not exist/);
    assert.equal((await k.api.ok("GET", "/v1/invocations")).invocations.length, 0, "nothing was queued");
  } finally {
    await k.close();
  }
});

test("cancel: a queued invocation at once, a running one within 2 s, and the instance serves the next", async () => {
  const k = await startTestServer();
  try {
    await k.api.endpoint("slow", noop({ NOOP_DELAY_MS: "30000" }));
    const input = await k.api.put("input", "a.wav", Buffer.from("abc"));
    const first = (await k.api.ok("POST", "/v1/endpoints/slow/invocations", { inputLocation: input }))
      .inferenceId;
    const second = (await k.api.ok("POST", "/v1/endpoints/slow/invocations", { inputLocation: input }))
      .inferenceId;
    await waitFor(
      async () => (await k.api.ok("GET", `/v1/invocations/${first}`)).state === "Running",
      10_000,
      "running",
    );
    const queued = await k.api.ok("GET", `/v1/invocations/${second}`);
    assert.equal(queued.queuePosition, 1);

    const c2 = await k.api.ok("POST", `/v1/invocations/${second}/cancel`);
    assert.equal(c2.state, "Cancelled", "a queued invocation is cancelled at once");
    const doc = JSON.parse((await k.api.getObject(c2.failureLocation)).text);
    assert.equal(doc.State, "Cancelled");

    const t0 = Date.now();
    await k.api.ok("POST", `/v1/invocations/${first}/cancel`);
    const c1 = await k.api.waitTerminal(first, 5000);
    assert.equal(c1.state, "Cancelled");
    assert.ok(Date.now() - t0 < 2000, `running invocation stopped in ${Date.now() - t0} ms`);
    assert.equal(
      (await k.api.getObject(c1.outputLocation)).status,
      404,
      "no output for a cancelled invocation",
    );

    // The instance is free again: its next invocation starts at once (and would take 30 s, so cancel it too).
    const third = (await k.api.ok("POST", "/v1/endpoints/slow/invocations", { inputLocation: input }))
      .inferenceId;
    await waitFor(
      async () => (await k.api.ok("GET", `/v1/invocations/${third}`)).state === "Running",
      2000,
      "third running",
    );
    await k.api.ok("POST", `/v1/invocations/${third}/cancel`);
    await k.api.waitTerminal(third, 5000);
  } finally {
    await k.close();
  }
});

test("an instance killed mid-invocation is replaced and its work retried", async () => {
  const k = await startTestServer();
  try {
    await k.api.endpoint("crashy", noop({ NOOP_DELAY_MS: "1500" }));
    const input = await k.api.put("input", "a.wav", Buffer.from("abc"));
    const id = (await k.api.ok("POST", "/v1/endpoints/crashy/invocations", { inputLocation: input }))
      .inferenceId;
    await waitFor(
      async () => (await k.api.ok("GET", `/v1/invocations/${id}`)).state === "Running",
      10_000,
      "running",
    );
    const ep = await k.api.ok("GET", "/v1/endpoints/crashy");
    const victim = ep.instances.find((i: { state: string }) => i.state === "InService");
    process.kill(victim.pid, "SIGKILL");
    const done = await k.api.waitTerminal(id, 30_000);
    assert.equal(done.state, "Succeeded");
    assert.equal(done.attempts, 2, "retried once");
    const after = await k.api.ok("GET", "/v1/endpoints/crashy");
    assert.ok(
      after.instances.some(
        (i: { id: string; state: string }) => i.id !== victim.id && i.state === "InService",
      ),
      "replaced",
    );
  } finally {
    await k.close();
  }
});

test("a model server that never answers /ping fails the startup health check, visibly, without spinning", async () => {
  const k = await startTestServer({ startupHealthTimeoutMs: 1000, maxConsecutiveStartFailures: 2 });
  try {
    await k.api.ok("POST", "/v1/models", { name: "dead", ...noop({ NOOP_NEVER_READY: "1" }) });
    await k.api.ok("POST", "/v1/endpoint-configs", { name: "dead", modelName: "dead" });
    await k.api.ok("POST", "/v1/endpoints", { name: "dead", configName: "dead" });
    await waitFor(
      async () => (await k.api.ok("GET", "/v1/endpoints/dead")).status === "Failed",
      20_000,
      "Failed",
    );
    const ep = await k.api.ok("GET", "/v1/endpoints/dead");
    assert.match(ep.failureReason, /did not answer GET \/ping with 200 within 1000 ms/);
    const input = await k.api.put("input", "a.wav", Buffer.from("abc"));
    const r = await k.api.call("POST", "/v1/endpoints/dead/invocations", { inputLocation: input });
    assert.equal(r.status, 400);
    assert.match(r.body.error.message, /is Failed: variant AllTraffic: 2 instance starts failed/);
  } finally {
    await k.close();
  }
});
