import { test } from "node:test";
import assert from "node:assert/strict";
import { createVerify } from "node:crypto";
import {
  CreateTopicCommand,
  ListSubscriptionsByTopicCommand,
  SNSClient,
  SubscribeCommand,
} from "@aws-sdk/client-sns";
import { canonicalString } from "../../src/notify/sns-message.js";
import { noopModelServer, waitFor } from "../helpers/server.js";
import { startNotifyServer } from "./receiver.js";

const { k, receiver } = await startNotifyServer();
const sns = new SNSClient({
  endpoint: k.url,
  region: "us-east-1",
  credentials: { accessKeyId: "test", secretAccessKey: "test" },
});

test("SNS topic: confirmation handshake, then SageMaker-shaped success and error notifications", async () => {
  const { TopicArn: success } = await sns.send(new CreateTopicCommand({ Name: "ok-topic" }));
  const { TopicArn: errors } = await sns.send(new CreateTopicCommand({ Name: "err-topic" }));
  assert.equal(success, "arn:aws:sns:us-east-1:000000000000:ok-topic");
  for (const arn of [success!, errors!]) {
    const sub = await sns.send(
      new SubscribeCommand({ TopicArn: arn, Protocol: "http", Endpoint: receiver.url }),
    );
    assert.equal(sub.SubscriptionArn, "pending confirmation");
  }
  await waitFor(() => receiver.received.length >= 2, 10_000, "two SubscriptionConfirmation messages");
  const key = await (await fetch(JSON.parse(receiver.received[0]!.body).SigningCertURL)).text();
  for (const r of receiver.received) {
    assert.equal(r.headers["x-amz-sns-message-type"], "SubscriptionConfirmation");
    const m = JSON.parse(r.body);
    assert.equal(m.Type, "SubscriptionConfirmation");
    assert.ok(createVerify("RSA-SHA256").update(canonicalString(m)).verify(key, m.Signature, "base64"));
    const confirm = await fetch(m.SubscribeURL);
    assert.equal(confirm.status, 200);
    assert.match(await confirm.text(), /<ConfirmSubscriptionResult><SubscriptionArn>arn:aws:sns:/);
  }
  const subs = await sns.send(new ListSubscriptionsByTopicCommand({ TopicArn: success }));
  assert.ok(subs.Subscriptions?.[0]?.SubscriptionArn?.startsWith(`${success}:`), "confirmed");

  // Each request takes 1 s, one at a time, so the second is still queued when it is cancelled.
  await k.service.createModel({
    name: "sn",
    image: `local:${noopModelServer}`,
    environment: { NOOP_DELAY_MS: "1000" },
  });
  await k.service.createEndpointConfig({
    name: "sn",
    variants: [{ modelName: "sn", initialInstanceCount: 1 }],
    asyncConfig: {
      notification: {
        successTopic: success,
        errorTopic: errors,
        includeInferenceResponseIn: ["SUCCESS_NOTIFICATION_TOPIC"],
      },
    },
  });
  await k.service.createEndpoint({ name: "sn", configName: "sn" });
  await waitFor(async () => (await k.service.getEndpoint("sn")).status === "InService", 30_000, "InService");
  const input = await k.api.put("kikitori", "in/sn.wav", Buffer.from("some audio"));
  const good = await k.api.ok("POST", "/v1/endpoints/sn/invocations", {
    inputLocation: input,
    contentType: "audio/wav",
  });
  // A cancelled request fails: it goes to the ErrorTopic with a failureReason. (Without the model's
  // delay the second request could finish before the cancel reaches it.)
  const bad = await k.api.ok("POST", "/v1/endpoints/sn/invocations", {
    inputLocation: input,
    requestTtlSeconds: 60,
  });
  await k.api.ok("POST", `/v1/invocations/${bad.inferenceId}/cancel`);
  const notes = () => receiver.received.filter((r) => r.headers["x-amz-sns-message-type"] === "Notification");
  await waitFor(() => notes().length >= 2, 20_000, "two notifications");
  for (const r of notes()) {
    const env = JSON.parse(r.body);
    assert.ok(createVerify("RSA-SHA256").update(canonicalString(env)).verify(key, env.Signature, "base64"));
    assert.equal(r.headers["x-amz-sns-topic-arn"], env.TopicArn);
    assert.equal(r.headers["x-amz-sns-message-id"], env.MessageId);
    assert.ok(String(r.headers["x-amz-sns-subscription-arn"]).startsWith(env.TopicArn));
    for (const f of [
      "Type",
      "MessageId",
      "TopicArn",
      "Message",
      "Timestamp",
      "SignatureVersion",
      "Signature",
      "SigningCertURL",
      "UnsubscribeURL",
    ])
      assert.ok(env[f], `envelope has ${f}`);
    const m = JSON.parse(env.Message);
    assert.equal(m.eventSource, "aws:sagemaker");
    assert.equal(m.eventName, "InferenceResult");
    assert.equal(m.eventVersion, "1.0");
    assert.equal(m.awsRegion, "us-east-1");
    assert.equal(m.requestParameters.endpointName, "sn");
    assert.equal(m.requestParameters.inputLocation, input);
    assert.ok(m.eventTime && m.receivedTime);
    if (m.inferenceId === good.inferenceId) {
      assert.equal(env.TopicArn, success);
      assert.equal(m.invocationStatus, "Completed");
      assert.equal(m.responseParameters.outputLocation, good.outputLocation);
      assert.equal(JSON.parse(m.responseBody.content).bytes, 10, "IncludeInferenceResponseIn");
    } else {
      assert.equal(m.inferenceId, bad.inferenceId);
      assert.equal(env.TopicArn, errors);
      assert.equal(m.invocationStatus, "Failed");
      assert.match(m.failureReason, /Cancelled/);
    }
  }
  assert.deepEqual(
    new Set(notes().map((r) => JSON.parse(JSON.parse(r.body).Message).inferenceId)),
    new Set([good.inferenceId, bad.inferenceId]),
  );
});

test("SSE: queued (position) → started → completed, and a long poll that returns on the change", async () => {
  const input = await k.api.put("kikitori", "in/sse.wav", Buffer.from("x".repeat(100)));
  await k.api.ok("POST", "/v1/models", {
    name: "slow",
    image: `local:${noopModelServer}`,
    environment: { NOOP_DELAY_MS: "800" },
  });
  await k.api.ok("POST", "/v1/endpoint-configs", {
    name: "slow",
    modelName: "slow",
    maxConcurrentInvocationsPerInstance: 1,
  });
  await k.api.ok("POST", "/v1/endpoints", { name: "slow", configName: "slow" });
  const first = await k.api.ok("POST", "/v1/endpoints/slow/invocations", { inputLocation: input });
  const second = await k.api.ok("POST", "/v1/endpoints/slow/invocations", { inputLocation: input });
  const res = await fetch(`${k.url}/v1/invocations/${second.inferenceId}/events`);
  assert.equal(res.headers.get("content-type"), "text/event-stream; charset=utf-8");
  const { readSse } = await import("../../src/notify/live.js");
  const events: { event: string; data: Record<string, unknown> }[] = [];
  for await (const e of readSse(res.body!)) events.push({ event: e.event, data: JSON.parse(e.data) });
  const names = events.map((e) => e.event);
  assert.equal(names[0], "queued");
  assert.equal(events[0]!.data.position, 2);
  assert.ok(names.indexOf("started") > 0);
  assert.equal(names.at(-1), "completed");
  assert.equal(events.at(-1)!.data.state, "Succeeded");
  const positions = events.filter((e) => e.event === "queued").map((e) => e.data.position);
  assert.deepEqual(positions, [...positions].sort().reverse(), "positions only go down");
  assert.equal((await k.api.ok("GET", `/v1/invocations/${first.inferenceId}`)).state, "Succeeded");

  const third = await k.api.ok("POST", "/v1/endpoints/slow/invocations", { inputLocation: input });
  const t0 = Date.now();
  const waited = await k.api.ok("GET", `/v1/invocations/${third.inferenceId}?wait=30`);
  assert.notEqual(waited.state, "Queued");
  assert.ok(Date.now() - t0 < 10_000);
  const missing = await k.api.call("GET", "/v1/invocations/nope/events");
  assert.equal(missing.status, 404);
});
