import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import {
  CreateEndpointCommand,
  CreateEndpointConfigCommand,
  CreateModelCommand,
  DescribeEndpointCommand,
  SageMakerClient,
  UpdateEndpointCommand,
  UpdateEndpointWeightsAndCapacitiesCommand,
  waitUntilEndpointInService,
} from "@aws-sdk/client-sagemaker";
import { InvokeEndpointCommand, SageMakerRuntimeClient } from "@aws-sdk/client-sagemaker-runtime";
import { loadConfig } from "../../src/config.js";
import { waitFor } from "../helpers/server.js";
import { CREDS, makeModelTar, rejects, startCompatServer, type CompatServer } from "./helpers.js";

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

    // update: while the green instance starts (8 s), the blue one serves; then green serves alone.
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

  it("@aws-sdk v3: an update to a model that cannot start is rolled back; the old instance never stopped", async () => {
    const client = { endpoint: srv.url, region: "us-east-1", credentials: CREDS };
    const sm = new SageMakerClient(client);
    const smr = new SageMakerRuntimeClient(client);
    const role = "arn:aws:iam::000000000000:role/kikitori-execution-role";
    for (const [name, image] of [
      ["rb-good", `local:${srv.noopModelServer}`],
      ["rb-broken", "local:/bin/false"], // exits at once: every start fails
    ] as const) {
      await sm.send(
        new CreateModelCommand({
          ModelName: name,
          ExecutionRoleArn: role,
          PrimaryContainer: { Image: image },
        }),
      );
      await sm.send(
        new CreateEndpointConfigCommand({
          EndpointConfigName: name,
          ProductionVariants: [{ VariantName: "AllTraffic", ModelName: name, InitialInstanceCount: 1 }],
        }),
      );
    }
    await sm.send(new CreateEndpointCommand({ EndpointName: "rb", EndpointConfigName: "rb-good" }));
    const wait = { client: sm, maxWaitTime: 120, minDelay: 1, maxDelay: 1 };
    await waitUntilEndpointInService(wait, { EndpointName: "rb" });
    await sm.send(new UpdateEndpointCommand({ EndpointName: "rb", EndpointConfigName: "rb-broken" }));
    const served: number[] = [];
    let d = await sm.send(new DescribeEndpointCommand({ EndpointName: "rb" }));
    assert.deepEqual(
      [d.EndpointStatus, d.PendingDeploymentSummary?.EndpointConfigName],
      ["Updating", "rb-broken"],
    );
    await waitFor(
      async () => {
        const sync = await smr.send(
          new InvokeEndpointCommand({ EndpointName: "rb", Body: Buffer.from("hi") }),
        );
        served.push(JSON.parse(Buffer.from(sync.Body!).toString()).bytes as number);
        d = await sm.send(new DescribeEndpointCommand({ EndpointName: "rb" }));
        return d.EndpointStatus === "InService";
      },
      60_000,
      "the update's rollback",
      250,
    );
    const rolledBack = d;
    assert.equal(rolledBack.EndpointConfigName, "rb-good");
    assert.equal(rolledBack.PendingDeploymentSummary, undefined);
    assert.match(
      rolledBack.FailureReason ?? "",
      /^the update was rolled back: variant AllTraffic: 3 instance starts failed in a row; last: /,
    );
    assert.ok(served.length >= 2 && served.every((b) => b === 2), `served all along: ${served.join(",")}`);
  });

  it("@aws-sdk v3: UpdateEndpoint with RetainAllVariantProperties keeps the variant's instance count", async () => {
    const sm = new SageMakerClient({ endpoint: srv.url, region: "us-east-1", credentials: CREDS });
    const wait = { client: sm, maxWaitTime: 120, minDelay: 1, maxDelay: 1 };
    for (const name of ["rt-a", "rt-b"]) {
      await sm.send(
        new CreateModelCommand({
          ModelName: name,
          ExecutionRoleArn: "arn:aws:iam::000000000000:role/kikitori-execution-role",
          PrimaryContainer: { Image: `local:${srv.noopModelServer}` },
        }),
      );
      await sm.send(
        new CreateEndpointConfigCommand({
          EndpointConfigName: name,
          ProductionVariants: [{ VariantName: "AllTraffic", ModelName: name, InitialInstanceCount: 1 }],
        }),
      );
    }
    await sm.send(new CreateEndpointCommand({ EndpointName: "rt", EndpointConfigName: "rt-a" }));
    await waitUntilEndpointInService(wait, { EndpointName: "rt" });
    const variant = async () =>
      (await sm.send(new DescribeEndpointCommand({ EndpointName: "rt" }))).ProductionVariants![0]!;
    await sm.send(
      new UpdateEndpointWeightsAndCapacitiesCommand({
        EndpointName: "rt",
        DesiredWeightsAndCapacities: [{ VariantName: "AllTraffic", DesiredInstanceCount: 2 }],
      }),
    );
    await waitFor(async () => (await variant()).CurrentInstanceCount === 2, 60_000, "two instances");

    await rejects(
      sm.send(
        new UpdateEndpointCommand({
          EndpointName: "rt",
          EndpointConfigName: "rt-b",
          RetainAllVariantProperties: true,
          ExcludeRetainedVariantProperties: [{ VariantPropertyType: "Colour" as "DesiredWeight" }],
        }),
      ),
      "ValidationException",
      /VariantPropertyType must be one of DesiredInstanceCount, DesiredWeight, DataCaptureConfig/,
    );
    await sm.send(
      new UpdateEndpointCommand({
        EndpointName: "rt",
        EndpointConfigName: "rt-b",
        RetainAllVariantProperties: true,
      }),
    );
    await waitUntilEndpointInService(wait, { EndpointName: "rt" });
    const kept = await variant();
    assert.deepEqual([kept.DesiredInstanceCount, kept.CurrentInstanceCount], [2, 2], "retained");

    // Without it, the new config's InitialInstanceCount applies (as on SageMaker).
    await sm.send(new UpdateEndpointCommand({ EndpointName: "rt", EndpointConfigName: "rt-a" }));
    await waitUntilEndpointInService(wait, { EndpointName: "rt" });
    const reset = await variant();
    assert.deepEqual(
      [reset.DesiredInstanceCount, reset.CurrentInstanceCount],
      [1, 1],
      "InitialInstanceCount",
    );
  });
});
