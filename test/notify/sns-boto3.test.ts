/** The SNS front door checked from a real boto3 client (skips without python3 + boto3). */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { createVerify } from "node:crypto";
import { join } from "node:path";
import { promisify } from "node:util";
import { canonicalString } from "../../src/notify/sns-message.js";
import { repoRoot, waitFor } from "../helpers/server.js";
import { startNotifyServer } from "./receiver.js";

const hasBoto3 = (() => {
  try {
    execFileSync("python3", ["-c", "import boto3"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

const { k, receiver } = await startNotifyServer();

const script = join(repoRoot, "test", "notify", "sns_boto3.py");
async function boto3(...args: string[]) {
  const { stdout } = await promisify(execFile)("python3", [script, ...args], {
    env: { ...process.env, KK_URL: k.url },
  });
  return JSON.parse(stdout) as any;
}

test(
  "boto3 sns: subscribe, confirm with the token, publish, unsubscribe",
  { skip: !hasBoto3 && "python3 with boto3 is not installed" },
  async () => {
    const sub = await boto3("subscribe", receiver.url);
    assert.equal(sub.SubscriptionArn, "pending confirmation");
    await waitFor(() => receiver.received.length >= 1, 10_000, "the SubscriptionConfirmation");
    const confirmation = JSON.parse(receiver.received[0]!.body);
    assert.equal(confirmation.Type, "SubscriptionConfirmation");
    assert.equal(confirmation.TopicArn, sub.TopicArn);

    const seen = await boto3("confirm", sub.TopicArn, confirmation.Token);
    assert.ok(seen.SubscriptionArn.startsWith(`${sub.TopicArn}:`));
    assert.deepEqual(
      seen.Subscriptions.map((s: any) => [s.Protocol, s.Endpoint]),
      [["http", receiver.url]],
    );
    assert.ok(seen.Topics.includes(sub.TopicArn));

    await waitFor(() => receiver.received.length >= 2, 10_000, "the published notification");
    const n = receiver.received[1]!;
    assert.equal(n.headers["x-amz-sns-message-type"], "Notification");
    const m = JSON.parse(n.body);
    assert.equal(m.MessageId, seen.MessageId);
    assert.equal(m.Subject, "hello");
    assert.deepEqual(JSON.parse(m.Message), { from: "boto3" });
    const key = await (await fetch(JSON.parse(receiver.received[0]!.body).SigningCertURL)).text();
    assert.ok(
      createVerify("RSA-SHA256").update(canonicalString(m)).verify(key, m.Signature, "base64"),
      "signed",
    );

    const left = await boto3("unsubscribe", seen.SubscriptionArn);
    assert.deepEqual(left.Subscriptions, []);
  },
);
