import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { loadConfig } from "../../src/config.js";
import { CREDS, makeModelTar, startCompatServer, type CompatServer } from "./helpers.js";

const run = promisify(execFile);
const hasBoto3 = () =>
  run("python3", ["-c", "import boto3"]).then(
    () => true,
    () => false,
  );

describe("boto3: an endpoint's life as on SageMaker (its own config copy, blue/green update, delete with work queued)", () => {
  let srv: CompatServer;
  before(async () => {
    // SigV4 as in the other compat tests; the error topic's subscriber listens on loopback.
    srv = await startCompatServer({
      notify: {
        ...loadConfig({}, {}).notify,
        egress: { allowLoopback: true, allowPrivate: false, allowHosts: [], denyHosts: [] },
        initialBackoffMs: 200,
        pollMs: 100,
      },
    });
  });
  after(() => srv?.close());

  it("keep serving after DeleteEndpointConfig/DeleteModel; UpdateEndpoint blue/green; DeleteEndpoint fails its queue with documents", async (t) => {
    if (!(await hasBoto3())) return t.skip("python3 with boto3 is not installed");
    const { stdout } = await run("python3", [join(import.meta.dirname, "endpoint_lifecycle.py")], {
      timeout: 300_000,
      maxBuffer: 16 * 1024 * 1024,
      env: {
        ...process.env,
        KK_URL: srv.url,
        KK_IMAGE: `local:${srv.noopModelServer}`,
        KK_AUDIO: await srv.speechFile(),
        KK_BLUE_TAR: await makeModelTar(srv.dir, { "blue.txt": "blue weights\n" }),
        KK_GREEN_TAR: await makeModelTar(srv.dir, { "green.txt": "green weights\n" }),
        AWS_ACCESS_KEY_ID: CREDS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: CREDS.secretAccessKey,
        AWS_DEFAULT_REGION: "us-east-1",
        AWS_CONFIG_FILE: "/dev/null",
        AWS_SHARED_CREDENTIALS_FILE: "/dev/null",
      },
    });
    const r = JSON.parse(stdout.trim().split("\n").pop()!);

    // keep: still InService from its own copy, still named after the deleted config, and it serves.
    assert.deepEqual(r.keep, {
      status: "InService",
      config: "keep-config",
      instances: 1,
      output_path: "s3://lifecycle/keep-out",
      served_by: ["blue.txt"],
    });

    // update: while the green instance starts (4 s), the blue one serves; then green serves alone.
    const u = r.update;
    assert.deepEqual(u.during, { status: "Updating", config: "bg-blue", pending: "bg-green" });
    assert.deepEqual(u.served_while_updating, [["blue.txt"], ["blue.txt"], ["blue.txt"]]);
    assert.equal(u.status_after_those, "Updating");
    assert.match(
      u.second_update,
      /^Cannot update in-progress endpoint "arn:aws:sagemaker:.*:endpoint\/bg"\.$/,
    );
    assert.deepEqual(u.after, { status: "InService", config: "bg-green", pending: null, instances: 1 });
    assert.deepEqual(u.served_after, [["green.txt"], ["green.txt"]]);
    // The old instance drained only after the new one was InService (no moment without one serving).
    const records = await srv.kikitori.service.listInstances({ endpoint: "bg" });
    const inService = (id: string) => records.find((i) => i.id === id)?.inServiceAt ?? Infinity;
    const [old, fresh] = [...records].sort((a, b) => a.startedAt - b.startedAt);
    assert.ok(old && fresh, `two instances (blue, then green): ${JSON.stringify(records)}`);
    assert.ok(old.endedAt !== undefined && old.endedAt >= inService(fresh.id), JSON.stringify(records));

    // delete: four requests (one running, three queued) failed with documents at the failure path and one
    // message each on the error topic; none ran on the endpoint made afterwards under the same name.
    const d = r.delete;
    assert.equal(d.gone, "ValidationException");
    assert.equal(d.documents.length, 4);
    for (const [i, doc] of d.documents.entries()) {
      assert.match(d.failure_locations[i], /^s3:\/\/lifecycle\/del-failed\/.+-error\.out$/);
      assert.equal(doc.InferenceId, d.ids[i]);
      assert.equal(doc.State, "Failed");
      assert.equal(doc.ErrorCode, "EndpointDeleted");
      assert.equal(doc.FailureReason, "the endpoint del was deleted before the invocation finished");
    }
    assert.deepEqual(new Set(d.messages.map((m: { inferenceId: string }) => m.inferenceId)), new Set(d.ids));
    for (const m of d.messages) {
      assert.equal(m.invocationStatus, "Failed");
      assert.match(m.failureReason, /the endpoint del was deleted/);
    }
    assert.deepEqual(d.outputs_after_recreate, [false, false, false, false]);
    assert.deepEqual(d.fresh_served_by, ["green.txt"]);
    for (const id of d.ids) {
      const inv = await srv.kikitori.service.getInvocation(id);
      assert.deepEqual([inv.state, inv.error?.code], ["Failed", "EndpointDeleted"]);
    }
    // At least one was running when the endpoint went (the other three waited in its queue).
    const started = await Promise.all(
      d.ids.map(async (id: string) => (await srv.kikitori.service.getInvocation(id)).startedAt),
    );
    assert.ok(
      started.some((s) => s !== undefined),
      "one of them was running",
    );
  });
});
