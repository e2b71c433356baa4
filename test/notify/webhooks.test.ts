import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { createHmac, timingSafeEqual } from "node:crypto";
import { Webhook } from "standardwebhooks";
import { loadConfig } from "../../src/config.js";
import type { NotifyOptions } from "../../src/notify/index.js";
import { noopModelServer, startTestServer, waitFor } from "../helpers/server.js";
import { Receiver, type Received } from "./receiver.js";

/** The documented algorithm, independent of the library: HMAC-SHA256 over `id.timestamp.body`. */
function verify(
  secret: string,
  r: Pick<Received, "headers" | "body">,
  toleranceS = 300,
  nowS = Date.now() / 1000,
) {
  const id = String(r.headers["webhook-id"]);
  const ts = String(r.headers["webhook-timestamp"]);
  if (Math.abs(nowS - Number(ts)) > toleranceS) return false;
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const expected = createHmac("sha256", key).update(`${id}.${ts}.${r.body}`).digest();
  return String(r.headers["webhook-signature"])
    .split(" ")
    .some((s) => {
      const [v, sig] = s.split(",");
      const got = Buffer.from(sig ?? "", "base64");
      return v === "v1" && got.length === expected.length && timingSafeEqual(got, expected);
    });
}

const notify = (over: Partial<NotifyOptions> = {}) => ({
  ...loadConfig({}, {}).notify,
  egress: { allowLoopback: true, allowPrivate: false, allowHosts: [], denyHosts: [] },
  initialBackoffMs: 200,
  maxBackoffMs: 1000,
  requestTimeoutMs: 2000,
  pollMs: 100,
  ...over,
});

const k = await startTestServer({ notify: notify() });
const receiver = await new Receiver().start();
let input = "";
let secret = "";

before(async () => {
  await k.api.endpoint("wh", { image: `local:${noopModelServer}`, environment: { NOOP_DELAY_MS: "300" } });
  input = await k.api.put("kikitori", "in/a.wav", Buffer.from("RIFF fake audio"));
  secret = (await k.api.ok("POST", "/v1/endpoints/wh/webhook-secret")).secret;
  assert.match(secret, /^whsec_[A-Za-z0-9+/=]{40,}$/);
});
after(async () => {
  await receiver.stop();
  await k.close();
});

test("every delivery is signed the Standard Webhooks way; tampering and stale timestamps fail", async () => {
  const inv = await k.api.ok("POST", "/v1/endpoints/wh/invocations", {
    inputLocation: input,
    webhook: { url: receiver.url, events: ["start", "completed"], includeTranscript: true },
  });
  await waitFor(
    () =>
      receiver.received.some(
        (r) =>
          JSON.parse(r.body).type === "invocation.completed" &&
          JSON.parse(r.body).data.inferenceId === inv.inferenceId,
      ),
    15_000,
    "the completed webhook",
  );
  const mine = receiver.received.filter((r) => JSON.parse(r.body).data.inferenceId === inv.inferenceId);
  assert.deepEqual(
    mine.map((r) => JSON.parse(r.body).type),
    ["invocation.started", "invocation.completed"],
  );
  for (const r of mine) {
    assert.ok(verify(secret, r), "the independent HMAC check passes");
    new Webhook(secret).verify(r.body, r.headers as Record<string, string>); // and the library agrees
    assert.equal(
      verify(secret, { ...r, body: r.body.replace(`"data":{`, `"data":{"x":1,`) }),
      false,
      "tampered body",
    );
    assert.equal(verify(secret, r, 300, Date.now() / 1000 + 3600), false, "stale timestamp");
    assert.throws(() => new Webhook(secret).verify(r.body + " ", r.headers as Record<string, string>));
  }
  const done = JSON.parse(mine[1]!.body);
  assert.equal(done.data.state, "Succeeded");
  assert.equal(done.data.outputLocation, inv.outputLocation);
  assert.equal(done.data.transcript.bytes, 15, "the (noop) model's response is included on request");
  assert.ok(done.data.timing.totalMs >= 0);
  const { deliveries } = await k.api.ok("GET", `/v1/invocations/${inv.inferenceId}/deliveries`);
  assert.equal(deliveries.length, 2);
  assert.ok(deliveries.every((d: { status: string }) => d.status === "Delivered"));
});

test("receiver down, then up: retried with backoff until it arrives, with the same webhook-id", async () => {
  let down = true;
  receiver.status = () => (down ? 503 : 200);
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) {
    const inv = await k.api.ok("POST", "/v1/endpoints/wh/invocations", {
      inputLocation: input,
      webhook: { url: receiver.url },
    });
    ids.push(inv.inferenceId);
  }
  await waitFor(
    async () => {
      const d = (await k.api.ok("GET", `/v1/invocations/${ids[2]}/deliveries`)).deliveries;
      return d.length === 1 && d[0].attempts >= 2;
    },
    20_000,
    "failed attempts",
  );
  await new Promise((r) => setTimeout(r, 1500));
  down = false;
  for (const id of ids) {
    await waitFor(
      async () =>
        (await k.api.ok("GET", `/v1/invocations/${id}/deliveries`)).deliveries[0].status === "Delivered",
      20_000,
      `delivery of ${id}`,
    );
    const [d] = (await k.api.ok("GET", `/v1/invocations/${id}/deliveries`)).deliveries;
    const got = receiver.received.filter((r) => JSON.parse(r.body).data.inferenceId === id);
    assert.ok(got.length >= 2, "failed attempts reached the receiver too");
    assert.equal(new Set(got.map((r) => r.headers["webhook-id"])).size, 1, "one stable webhook-id");
    assert.equal(got[0]!.headers["webhook-id"], d.id);
    assert.ok(got.every((r) => verify(secret, r)));
    assert.equal(d.history.at(-1).status, 200);
    assert.equal(d.history[0].status, 503);
    assert.match(d.history[0].error, /receiver answered 503/);
  }
  receiver.status = () => 200;
});

test("a webhook at 169.254.169.254, or redirecting there, is refused with the reason", async () => {
  const r = await k.api.call("POST", "/v1/endpoints/wh/invocations", {
    inputLocation: input,
    webhook: { url: "http://169.254.169.254/latest/meta-data/" },
  });
  assert.equal(r.status, 400);
  assert.match(r.body.error.message, /webhook\.url: .*169\.254\.169\.254 is a link-local address/);
  const meta = await k.api.call("POST", "/v1/endpoints/wh/invocations", {
    inputLocation: input,
    webhook: { url: "http://metadata.google.internal/computeMetadata/v1/" },
  });
  assert.match(meta.body.error.message, /cloud metadata host/);

  receiver.status = () => ({
    status: 302,
    headers: { location: "http://169.254.169.254/latest/meta-data/" },
  });
  const inv = await k.api.ok("POST", "/v1/endpoints/wh/invocations", {
    inputLocation: input,
    webhook: { url: receiver.url },
  });
  await waitFor(
    async () =>
      (await k.api.ok("GET", `/v1/invocations/${inv.inferenceId}/deliveries`)).deliveries[0]?.attempts >= 1,
    15_000,
    "an attempt",
  );
  const [d] = (await k.api.ok("GET", `/v1/invocations/${inv.inferenceId}/deliveries`)).deliveries;
  assert.notEqual(d.status, "Delivered");
  assert.equal(d.lastStatus, 302);
  assert.match(d.lastError, /redirect not followed: 302 to http:\/\/169\.254\.169\.254\/latest\/meta-data\//);
  receiver.status = () => 200;
});
