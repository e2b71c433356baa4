// Bring your own container, for real: a model image in the seed's style (containers/seed-whisper: Flask +
// faster-whisper, built here from Debian's packages by containers/build) run by podman through the AWS API,
// with faster-whisper's tiny.en as its model.tar.gz. Skips only where podman is not installed.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import {
  CreateEndpointCommand,
  CreateEndpointConfigCommand,
  CreateModelCommand,
  DescribeEndpointCommand,
  SageMakerClient,
  waitUntilEndpointInService,
} from "@aws-sdk/client-sagemaker";
import { InvokeEndpointAsyncCommand, SageMakerRuntimeClient } from "@aws-sdk/client-sagemaker-runtime";
import {
  ApplicationAutoScalingClient,
  PutScalingPolicyCommand,
  RegisterScalableTargetCommand,
} from "@aws-sdk/client-application-auto-scaling";
import { CREDS, makeModelTar, startCompatServer, type CompatServer } from "../compat/helpers.js";
import { normalize, repoRoot, sox, testdata } from "../helpers/fixtures.js";
import { buildImage, noPodman, podman } from "../helpers/containers.js";
import { waitFor } from "../helpers/server.js";

const run = promisify(execFile);

/** The containers kikitori runs for an endpoint ("name image"), running or not, or only running ones. */
const containersOf = async (endpoint: string, only: "all" | "running" = "all") =>
  (
    await podman(
      "ps",
      ...(only === "all" ? ["--all"] : ["--filter", "status=running"]),
      "--filter",
      `label=kikitori.endpoint=${endpoint}`,
      "--format",
      "{{.Names}} {{.Image}}",
    )
  )
    .split("\n")
    .filter(Boolean);

describe(
  "a SageMaker-style model container (seed-whisper) under podman, end to end",
  { skip: noPodman },
  () => {
    const name = `seed-${process.pid}`;
    const bucket = "byoc";
    let srv: CompatServer;
    let image: string;
    let s3: S3Client;
    let sm: SageMakerClient;
    let smr: SageMakerRuntimeClient;

    before(async () => {
      // Built once per machine: later runs find the image by the hash of its inputs.
      image = await buildImage("seed-whisper");
      const ct2 = (await run(join(repoRoot, "scripts", "fetch-test-model"), ["--ct2"])).stdout.trim();
      srv = await startCompatServer();
      const cfg = { endpoint: srv.url, region: "us-east-1", credentials: CREDS, forcePathStyle: true };
      [s3, sm, smr] = [new S3Client(cfg), new SageMakerClient(cfg), new SageMakerRuntimeClient(cfg)];
      const files = ["config.json", "model.bin", "tokenizer.json", "vocabulary.txt"];
      const tar = await makeModelTar(srv.dir, Object.fromEntries(files.map((f) => [f, join(ct2, f)])));
      await s3.send(new CreateBucketCommand({ Bucket: bucket }));
      await s3.send(
        new PutObjectCommand({ Bucket: bucket, Key: "model/model.tar.gz", Body: await readFile(tar) }),
      );
    });
    after(async () => {
      await srv?.close();
      if (noPodman) return;
      for (const endpoint of [name, `${name}-doomed`])
        assert.deepEqual(await containersOf(endpoint), [], "no container outlives the service");
    });

    const upload = async (key: string, path: string) =>
      s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: await readFile(path) }));
    const invoke = async (key: string) =>
      (
        await smr.send(
          new InvokeEndpointAsyncCommand({
            EndpointName: name,
            InputLocation: `s3://${bucket}/${key}`,
            ContentType: "audio/wav",
          }),
        )
      ).InferenceId!;
    const outputOf = async (id: string) => {
      const inv = await srv.kikitori.service.getInvocation(id);
      assert.ok(inv);
      return inv;
    };
    const waitDone = async (id: string) => {
      await waitFor(
        async () => !["Queued", "Running"].includes((await outputOf(id)).state),
        180_000,
        `${id} done`,
        200,
      );
      const inv = await outputOf(id);
      assert.equal(inv.state, "Succeeded", JSON.stringify(inv.error));
      const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: `out/${id}.out` }));
      return { inv, body: JSON.parse(await got.Body!.transformToString()) };
    };

    it("CreateModel with the local image and a model.tar.gz → InService → InvokeEndpointAsync → the container's transcript", async () => {
      await sm.send(
        new CreateModelCommand({
          ModelName: name,
          ExecutionRoleArn: "arn:aws:iam::000000000000:role/kikitori-execution-role",
          PrimaryContainer: { Image: image, ModelDataUrl: `s3://${bucket}/model/model.tar.gz` },
        }),
      );
      await sm.send(
        new CreateEndpointConfigCommand({
          EndpointConfigName: name,
          ProductionVariants: [
            {
              VariantName: "AllTraffic",
              ModelName: name,
              InstanceType: "ml.m5.large",
              InitialInstanceCount: 1,
            },
          ],
          AsyncInferenceConfig: {
            OutputConfig: { S3OutputPath: `s3://${bucket}/out`, S3FailurePath: `s3://${bucket}/failed` },
          },
        }),
      );
      await sm.send(new CreateEndpointCommand({ EndpointName: name, EndpointConfigName: name }));
      await waitUntilEndpointInService(
        { client: sm, maxWaitTime: 300, minDelay: 1, maxDelay: 2 },
        { EndpointName: name },
      );
      // It is a container of that image, named after its instance, running under podman.
      const running = await containersOf(name, "running");
      assert.equal(running.length, 1, running.join(", "));
      assert.match(running[0]!, /^kikitori-i-[\w-]+ /);
      assert.equal(running[0]!.split(" ")[1], image);

      await upload("in/jfk.wav", testdata("jfk.wav"));
      await upload("in/quilter.wav", testdata("librispeech_1272-128104-0001.flac"));
      const [jfk, quilter] = [await invoke("in/jfk.wav"), await invoke("in/quilter.wav")];
      const a = await waitDone(jfk);
      const b = await waitDone(quilter);
      // The answer is the container's own: faster-whisper's transcript of each clip, from the mounted model data.
      assert.equal(normalize(a.body.text), normalize(await readFile(testdata("jfk.txt"), "utf8")));
      assert.match(normalize(b.body.text), /manner less interesting than his matter/);
      assert.deepEqual(a.body.model.files, ["config.json", "model.bin", "tokenizer.json", "vocabulary.txt"]);
      assert.equal(a.body.model.multilingual, false);
      assert.equal(a.body.language, "en");
      assert.equal(a.inv.attempts, 1);
    });

    it("a killed container is replaced by a new instance, and the work it had is retried there", async () => {
      const [before] = await containersOf(name);
      const killed = before!.split(" ")[0]!;
      // Three times the JFK clip (33 s): long enough to be in the model when the container dies.
      const long = join(srv.dir, "jfk-x3.wav");
      sox([testdata("jfk.wav"), testdata("jfk.wav"), testdata("jfk.wav"), long]);
      await upload("in/jfk-x3.wav", long);
      const id = await invoke("in/jfk-x3.wav");
      await waitFor(async () => (await outputOf(id)).state === "Running", 30_000, `${id} running`, 20);
      await podman("kill", killed);

      const { inv, body } = await waitDone(id);
      assert.equal(inv.attempts, 2, "the first attempt died with its container; the second one succeeded");
      assert.ok(
        normalize(body.text).split("ask not what your country can do for you").length - 1 >= 2,
        body.text,
      );
      const records = await srv.kikitori.service.listInstances({ endpoint: name });
      const dead = records.find((r) => `kikitori-${r.id}` === killed);
      assert.equal(dead?.state, "Failed");
      assert.match(dead?.reason ?? "", /model server exited with code 137/);
      const now = await containersOf(name);
      assert.equal(now.length, 1, now.join(", "));
      assert.notEqual(now[0]!.split(" ")[0], killed);
      assert.deepEqual(await containersOf(name, "running"), now);
    });

    it("scaling to zero stops the container, and a request at zero starts one again", async () => {
      const aas = new ApplicationAutoScalingClient({
        endpoint: srv.url,
        region: "us-east-1",
        credentials: CREDS,
      });
      const target = {
        ServiceNamespace: "sagemaker" as const,
        ResourceId: `endpoint/${name}/variant/AllTraffic`,
        ScalableDimension: "sagemaker:variant:DesiredInstanceCount" as const,
      };
      await aas.send(new RegisterScalableTargetCommand({ ...target, MinCapacity: 0, MaxCapacity: 1 }));
      await aas.send(
        new PutScalingPolicyCommand({
          ...target,
          PolicyName: "backlog",
          PolicyType: "TargetTrackingScaling",
          TargetTrackingScalingPolicyConfiguration: {
            TargetValue: 1,
            ScaleInCooldown: 0,
            ScaleOutCooldown: 0,
            CustomizedMetricSpecification: {
              MetricName: "ApproximateBacklogSizePerInstance",
              Namespace: "AWS/SageMaker",
              Dimensions: [{ Name: "EndpointName", Value: name }],
              Statistic: "Average",
            },
          },
        }),
      );
      const instances = async () =>
        (await sm.send(new DescribeEndpointCommand({ EndpointName: name }))).ProductionVariants?.[0]
          ?.CurrentInstanceCount;
      await waitFor(async () => (await instances()) === 0, 60_000, "scale-in to zero");
      // Stopped and removed: nothing of the endpoint is left in podman.
      await waitFor(
        async () => (await containersOf(name)).length === 0,
        30_000,
        "the container to be removed",
      );

      const id = await invoke("in/jfk.wav");
      const { body } = await waitDone(id);
      assert.equal(normalize(body.text), normalize(await readFile(testdata("jfk.txt"), "utf8")));
      assert.equal((await containersOf(name)).length, 1, "one container started for the request at zero");
    });

    it("an image that is not in podman's store is refused by CreateModel, and one that disappears fails its instance with what to do", async () => {
      const role = "arn:aws:iam::000000000000:role/kikitori-execution-role";
      await assert.rejects(
        sm.send(
          new CreateModelCommand({
            ModelName: `${name}-missing`,
            ExecutionRoleArn: role,
            PrimaryContainer: { Image: "localhost/kikitori/no-such-image:1" },
          }),
        ),
        (e: Error) =>
          e.name === "ValidationException" &&
          /"localhost\/kikitori\/no-such-image:1": podman has no such image in its local store \(podman build -t/.test(
            e.message,
          ),
      );
      // An image removed after CreateModel: the running container is killed, and its replacement cannot start.
      const doomed = `${name}-doomed`;
      const tag = `localhost/kikitori/seed-whisper:doomed-${process.pid}`;
      await podman("tag", image, tag);
      await sm.send(
        new CreateModelCommand({
          ModelName: doomed,
          ExecutionRoleArn: role,
          PrimaryContainer: { Image: tag, ModelDataUrl: `s3://${bucket}/model/model.tar.gz` },
        }),
      );
      await sm.send(
        new CreateEndpointConfigCommand({
          EndpointConfigName: doomed,
          ProductionVariants: [{ VariantName: "AllTraffic", ModelName: doomed, InitialInstanceCount: 1 }],
        }),
      );
      await sm.send(new CreateEndpointCommand({ EndpointName: doomed, EndpointConfigName: doomed }));
      await waitUntilEndpointInService(
        { client: sm, maxWaitTime: 300, minDelay: 1, maxDelay: 2 },
        { EndpointName: doomed },
      );
      await podman("untag", tag);
      await podman("kill", (await containersOf(doomed))[0]!.split(" ")[0]!);
      let reason = "";
      await waitFor(
        async () => {
          const records = await srv.kikitori.service.listInstances({ endpoint: doomed });
          reason = records.find((r) => /before answering/.test(r.reason ?? ""))?.reason ?? "";
          return reason !== "";
        },
        120_000,
        "the replacement instance to fail",
        200,
      );
      // podman's own words, then what they mean.
      assert.match(reason, /initializing source docker:\/\/localhost\/kikitori\/seed-whisper:doomed/);
      assert.match(reason, /not in the runtime's local store and could not be pulled: build it there/);
    });
  },
);
