import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { CREDS, startCompatServer, type CompatServer } from "./helpers.js";

const run = promisify(execFile);

describe("boto3: AWS's scale-to-zero recipe (put_metric_alarm + step policy) against kikitori", () => {
  let srv: CompatServer;
  before(async () => {
    srv = await startCompatServer();
  });
  after(() => srv?.close());

  it("scales 1 → 0 when idle, 0 → 1 through the alarm when a request waits, and 1 → 0 again", async () => {
    const { stdout } = await run("python3", [join(import.meta.dirname, "scale_from_zero.py")], {
      timeout: 240_000,
      env: {
        ...process.env,
        KK_URL: srv.url,
        KK_NAME: "scale-zero",
        KK_IMAGE: `local:${srv.noopModelServer}`,
        KK_AUDIO: await srv.speechFile(),
        AWS_ACCESS_KEY_ID: CREDS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: CREDS.secretAccessKey,
        AWS_DEFAULT_REGION: "us-east-1",
        AWS_CONFIG_FILE: "/dev/null",
        AWS_SHARED_CREDENTIALS_FILE: "/dev/null",
      },
    });
    const report = JSON.parse(stdout.trim().split("\n").pop()!) as Record<string, any>;
    assert.deepEqual(report.policy_alarms, ["HasBacklogWithoutCapacity-Alarm"]);
    assert.deepEqual(report.counts, [1, 0, 1, 0]);
    const activities = report.activities as [string, string][];
    assert.deepEqual(
      activities.map(([description]) => description),
      [0, 1, 0].map((n) => `Setting desired instance count to ${n}.`),
    );
    assert.match(
      activities[1]![1],
      /HasBacklogWithoutCapacity-ScalingPolicy.*CloudWatch alarm HasBacklogWithoutCapacity-Alarm in ALARM/,
    );
    assert.match(activities[2]![1], /Invocations-ScalingPolicy \(TargetTrackingScaling\)/);
    assert.ok(report.states.includes("ALARM"), `the alarm went to ALARM: ${report.states}`);
    assert.equal(report.states.at(-1), "OK");
    assert.equal(report.backlog_without_capacity_max, 1);
    assert.equal(report.invocations_processed, 1);
    assert.ok(report.metric_names.includes("ApproximateBacklogSizePerInstance"));
    assert.equal(report.alarms_after_delete, 0);
    assert.equal(report.delete_missing, "ResourceNotFound");
    assert.equal(report.bad_period[0], "InvalidParameterValue");
    assert.match(report.bad_period[1], /Period/);
  });
});
