import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import {
  CreateBucketCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import {
  CreateEndpointCommand,
  CreateEndpointConfigCommand,
  CreateModelCommand,
  DeleteEndpointCommand,
  DescribeEndpointCommand,
  ListEndpointsCommand,
  SageMakerClient,
  waitUntilEndpointDeleted,
  waitUntilEndpointInService,
} from "@aws-sdk/client-sagemaker";
import {
  InvokeEndpointAsyncCommand,
  InvokeEndpointCommand,
  SageMakerRuntimeClient,
} from "@aws-sdk/client-sagemaker-runtime";
import {
  ApplicationAutoScalingClient,
  DescribeScalingActivitiesCommand,
  DescribeScalingPoliciesCommand,
  PutScalingPolicyCommand,
  RegisterScalableTargetCommand,
} from "@aws-sdk/client-application-auto-scaling";
import { waitFor } from "../helpers/server.js";
import { CREDS, makeModelTar, startCompatServer, type CompatServer } from "./helpers.js";

const clientConfig = (url: string) => ({
  endpoint: url,
  region: "us-east-1",
  credentials: CREDS,
  forcePathStyle: true,
});

describe("@aws-sdk v3: the SageMaker async flow against kikitori (SigV4)", () => {
  let srv: CompatServer;
  before(async () => {
    srv = await startCompatServer();
  });
  after(() => srv?.close());

  it("S3, SageMaker, Application Auto Scaling and SageMaker Runtime clients, unchanged", async () => {
    const cfg = clientConfig(srv.url);
    const s3 = new S3Client(cfg);
    const sm = new SageMakerClient(cfg);
    const smr = new SageMakerRuntimeClient(cfg);
    const aas = new ApplicationAutoScalingClient(cfg);
    const name = "sdk-flow";
    const bucket = "sdk-bucket";

    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    const tar = await makeModelTar(srv.dir, { "weights.txt": "w\n", "config.json": "{}" });
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: "m/model.tar.gz", Body: await readFile(tar) }));
    const audio = await readFile(await srv.speechFile());
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: "in/clip.wav", Body: audio }));

    await sm.send(
      new CreateModelCommand({
        ModelName: name,
        ExecutionRoleArn: "arn:aws:iam::000000000000:role/kikitori-execution-role",
        PrimaryContainer: {
          Image: `local:${srv.noopModelServer}`,
          ModelDataUrl: `s3://${bucket}/m/model.tar.gz`,
        },
      }),
    );
    await sm.send(
      new CreateEndpointConfigCommand({
        EndpointConfigName: name,
        ProductionVariants: [{ VariantName: "AllTraffic", ModelName: name, InitialInstanceCount: 1 }],
        AsyncInferenceConfig: { OutputConfig: { S3OutputPath: `s3://${bucket}/out` } },
      }),
    );
    const { EndpointArn } = await sm.send(
      new CreateEndpointCommand({ EndpointName: name, EndpointConfigName: name }),
    );
    assert.equal(EndpointArn, `arn:aws:sagemaker:us-east-1:000000000000:endpoint/${name}`);
    const waited = await waitUntilEndpointInService(
      { client: sm, maxWaitTime: 120, minDelay: 1, maxDelay: 1 },
      { EndpointName: name },
    );
    assert.equal(waited.state, "SUCCESS");
    const desc = await sm.send(new DescribeEndpointCommand({ EndpointName: name }));
    assert.equal(desc.EndpointStatus, "InService");
    assert.ok(
      desc.CreationTime instanceof Date && Math.abs(desc.CreationTime.getTime() - Date.now()) < 120_000,
    );
    assert.equal(desc.ProductionVariants?.[0]?.CurrentInstanceCount, 1);
    const listed = await sm.send(
      new ListEndpointsCommand({ NameContains: "sdk", StatusEquals: "InService" }),
    );
    assert.deepEqual(
      listed.Endpoints?.map((e) => e.EndpointName),
      [name],
    );

    const resourceId = `endpoint/${name}/variant/AllTraffic`;
    const dim = "sagemaker:variant:DesiredInstanceCount";
    await aas.send(
      new RegisterScalableTargetCommand({
        ServiceNamespace: "sagemaker",
        ResourceId: resourceId,
        ScalableDimension: dim,
        MinCapacity: 0,
        MaxCapacity: 3,
      }),
    );
    const put = await aas.send(
      new PutScalingPolicyCommand({
        PolicyName: "backlog",
        ServiceNamespace: "sagemaker",
        ResourceId: resourceId,
        ScalableDimension: dim,
        PolicyType: "TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration: {
          TargetValue: 2,
          CustomizedMetricSpecification: {
            MetricName: "ApproximateBacklogSizePerInstance",
            Namespace: "AWS/SageMaker",
            Dimensions: [{ Name: "EndpointName", Value: name }],
            Statistic: "Average",
          },
        },
      }),
    );
    // A metric with no meaning for a queue-fed endpoint is refused by name.
    await assert.rejects(
      aas.send(
        new PutScalingPolicyCommand({
          PolicyName: "invocations",
          ServiceNamespace: "sagemaker",
          ResourceId: resourceId,
          ScalableDimension: dim,
          PolicyType: "TargetTrackingScaling",
          TargetTrackingScalingPolicyConfiguration: {
            TargetValue: 2,
            PredefinedMetricSpecification: { PredefinedMetricType: "SageMakerVariantInvocationsPerInstance" },
          },
        }),
      ),
      (e: Error) =>
        e.name === "ValidationException" &&
        /SageMakerVariantInvocationsPerInstance is not supported/.test(e.message),
    );
    assert.match(
      put.PolicyARN ?? "",
      /^arn:aws:autoscaling:us-east-1:000000000000:scalingPolicy:.*policyName\/backlog$/,
    );
    const pols = await aas.send(new DescribeScalingPoliciesCommand({ ServiceNamespace: "sagemaker" }));
    assert.equal(pols.ScalingPolicies?.[0]?.TargetTrackingScalingPolicyConfiguration?.TargetValue, 2);
    const acts = await aas.send(new DescribeScalingActivitiesCommand({ ServiceNamespace: "sagemaker" }));
    assert.ok(Array.isArray(acts.ScalingActivities));

    const inv = await smr.send(
      new InvokeEndpointAsyncCommand({
        EndpointName: name,
        InputLocation: `s3://${bucket}/in/clip.wav`,
        ContentType: "audio/wav",
        CustomAttributes: "k=v",
        InferenceId: "sdk-1",
      }),
    );
    assert.equal(inv.InferenceId, "sdk-1");
    assert.equal(inv.OutputLocation, `s3://${bucket}/out/sdk-1.out`);
    await waitFor(
      () =>
        s3.send(new HeadObjectCommand({ Bucket: bucket, Key: "out/sdk-1.out" })).then(
          () => true,
          () => false,
        ),
      60_000,
      "the output object",
      100,
    );
    const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "out/sdk-1.out" }));
    const doc = JSON.parse(await out.Body!.transformToString()) as Record<string, unknown>;
    assert.equal(doc.bytes, audio.length);
    assert.equal(doc.customAttributes, "k=v");
    assert.deepEqual((doc.modelFiles as string[]).sort(), ["config.json", "weights.txt"]);

    // Filename names the result object (S3OutputPathExtension adds a folder).
    const named = await smr.send(
      new InvokeEndpointAsyncCommand({
        EndpointName: name,
        InputLocation: `s3://${bucket}/in/clip.wav`,
        Filename: "clip-transcript.json",
        S3OutputPathExtension: "batch-7",
      }),
    );
    assert.equal(named.OutputLocation, `s3://${bucket}/out/batch-7/clip-transcript.json`);
    assert.equal(named.FailureLocation, `s3://${bucket}/out/batch-7/clip-transcript.json-error.out`);

    // Synchronous invocation goes straight to the InService instance's model server.
    const sync = await smr.send(
      new InvokeEndpointCommand({
        EndpointName: name,
        Body: Buffer.from("hello"),
        ContentType: "text/plain",
      }),
    );
    assert.equal(sync.InvokedProductionVariant, "AllTraffic");
    assert.equal(sync.ContentType, "application/json");
    assert.equal(JSON.parse(Buffer.from(sync.Body!).toString()).bytes, 5);

    await sm.send(new DeleteEndpointCommand({ EndpointName: name }));
    const gone = await waitUntilEndpointDeleted(
      { client: sm, maxWaitTime: 60, minDelay: 1, maxDelay: 1 },
      { EndpointName: name },
    );
    assert.equal(gone.state, "SUCCESS");
  });
});
