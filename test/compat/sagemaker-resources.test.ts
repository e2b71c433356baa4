import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  AddTagsCommand,
  CreateEndpointCommand,
  CreateEndpointConfigCommand,
  CreateModelCommand,
  DeleteModelCommand,
  DeleteTagsCommand,
  DescribeEndpointCommand,
  ListTagsCommand,
  SageMakerClient,
  UpdateEndpointWeightsAndCapacitiesCommand,
} from "@aws-sdk/client-sagemaker";
import {
  CloudWatchClient,
  DeleteAlarmsCommand,
  DescribeAlarmsCommand,
  PutMetricAlarmCommand,
} from "@aws-sdk/client-cloudwatch";
import { waitFor } from "../helpers/server.js";
import { CREDS, rejects, startCompatServer, type CompatServer } from "./helpers.js";

describe("@aws-sdk v3: SageMaker's answers that SDKs parse, tags, roles, capacities; CloudWatch over awsJson1_0", () => {
  let srv: CompatServer;
  let sm: SageMakerClient;
  before(async () => {
    srv = await startCompatServer();
    sm = new SageMakerClient({ endpoint: srv.url, region: "us-east-1", credentials: CREDS });
  });
  after(() => srv?.close());

  it("creating what exists answers SageMaker's ValidationException 'Cannot create already existing …'", async () => {
    const image = `local:${srv.noopModelServer}`;
    const model = { ModelName: "dup", PrimaryContainer: { Image: image } };
    await sm.send(new CreateModelCommand({ ...model, Tags: [{ Key: "team", Value: "speech" }] }));
    await rejects(
      sm.send(new CreateModelCommand(model)),
      "ValidationException",
      /^Cannot create already existing model "arn:aws:sagemaker:us-east-1:000000000000:model\/dup"\.$/,
    );
    const config = {
      EndpointConfigName: "dup",
      ProductionVariants: [{ VariantName: "v", ModelName: "dup", InitialInstanceCount: 1 }],
    };
    await sm.send(new CreateEndpointConfigCommand(config));
    await rejects(
      sm.send(new CreateEndpointConfigCommand(config)),
      "ValidationException",
      /^Cannot create already existing endpoint configuration "arn:aws:sagemaker:us-east-1:000000000000:endpoint-config\/dup"\.$/,
    );
    await sm.send(new CreateEndpointCommand({ EndpointName: "dup", EndpointConfigName: "dup" }));
    await rejects(
      sm.send(new CreateEndpointCommand({ EndpointName: "dup", EndpointConfigName: "dup" })),
      "ValidationException",
      /^Cannot create already existing endpoint "arn:aws:sagemaker:us-east-1:000000000000:endpoint\/dup"\.$/,
    );

    // Tags: given at creation, added, listed, deleted; gone with their resource.
    const arn = "arn:aws:sagemaker:us-east-1:000000000000:model/dup";
    await sm.send(
      new AddTagsCommand({
        ResourceArn: arn,
        Tags: [
          { Key: "stage", Value: "test" },
          { Key: "team", Value: "asr" },
        ],
      }),
    );
    assert.deepEqual((await sm.send(new ListTagsCommand({ ResourceArn: arn }))).Tags, [
      { Key: "team", Value: "asr" },
      { Key: "stage", Value: "test" },
    ]);
    await sm.send(new DeleteTagsCommand({ ResourceArn: arn, TagKeys: ["team"] }));
    assert.deepEqual((await sm.send(new ListTagsCommand({ ResourceArn: arn }))).Tags, [
      { Key: "stage", Value: "test" },
    ]);
    await rejects(
      sm.send(new ListTagsCommand({ ResourceArn: "arn:aws:sagemaker:us-east-1:000000000000:endpoint/nope" })),
      "ValidationException",
      /Could not find resource/,
    );

    // UpdateEndpointWeightsAndCapacities sets the desired count.
    await waitFor(
      async () =>
        (await sm.send(new DescribeEndpointCommand({ EndpointName: "dup" }))).EndpointStatus === "InService",
      60_000,
      "InService",
    );
    await sm.send(
      new UpdateEndpointWeightsAndCapacitiesCommand({
        EndpointName: "dup",
        DesiredWeightsAndCapacities: [{ VariantName: "v", DesiredInstanceCount: 2 }],
      }),
    );
    await waitFor(
      async () =>
        (await sm.send(new DescribeEndpointCommand({ EndpointName: "dup" }))).ProductionVariants?.[0]
          ?.CurrentInstanceCount === 2,
      60_000,
      "two instances",
    );
    await rejects(
      sm.send(
        new UpdateEndpointWeightsAndCapacitiesCommand({
          EndpointName: "dup",
          DesiredWeightsAndCapacities: [{ VariantName: "nope", DesiredInstanceCount: 1 }],
        }),
      ),
      "ValidationException",
      /"\[nope\]" is\/are not present/,
    );

    await sm.send(new DeleteModelCommand({ ModelName: "dup" }));
    await sm.send(new CreateModelCommand(model));
    assert.deepEqual(
      (await sm.send(new ListTagsCommand({ ResourceArn: arn }))).Tags,
      [],
      "tags went with the model",
    );
  });

  it("CreateModel checks that its execution role exists", async () => {
    await rejects(
      sm.send(
        new CreateModelCommand({
          ModelName: "no-role",
          ExecutionRoleArn: "arn:aws:iam::000000000000:role/nobody",
          PrimaryContainer: { Image: `local:${srv.noopModelServer}` },
        }),
      ),
      "ValidationException",
      /Could not assume role arn:aws:iam::000000000000:role\/nobody/,
    );
    await sm.send(
      new CreateModelCommand({
        ModelName: "with-role",
        ExecutionRoleArn: "arn:aws:iam::000000000000:role/kikitori-execution-role",
        PrimaryContainer: { Image: `local:${srv.noopModelServer}` },
      }),
    );
  });

  it("CloudWatch through @aws-sdk/client-cloudwatch (awsJson1_0, query-compatible errors)", async () => {
    const cw = new CloudWatchClient({ endpoint: srv.url, region: "us-east-1", credentials: CREDS });
    await cw.send(
      new PutMetricAlarmCommand({
        AlarmName: "backlog",
        Namespace: "AWS/SageMaker",
        MetricName: "ApproximateBacklogSize",
        Dimensions: [{ Name: "EndpointName", Value: "dup" }],
        Statistic: "Maximum",
        Period: 10,
        EvaluationPeriods: 1,
        Threshold: 5,
        ComparisonOperator: "GreaterThanThreshold",
      }),
    );
    const { MetricAlarms } = await cw.send(new DescribeAlarmsCommand({ AlarmNamePrefix: "back" }));
    assert.equal(MetricAlarms?.length, 1);
    assert.ok(MetricAlarms![0]!.StateUpdatedTimestamp instanceof Date);
    assert.equal(MetricAlarms![0]!.AlarmArn, "arn:aws:cloudwatch:us-east-1:000000000000:alarm:backlog");
    await waitFor(
      async () =>
        (await cw.send(new DescribeAlarmsCommand({ AlarmNames: ["backlog"] }))).MetricAlarms?.[0]
          ?.StateValue === "OK",
      30_000,
      "the alarm evaluated to OK (no backlog)",
    );
    await rejects(
      cw.send(
        new PutMetricAlarmCommand({
          AlarmName: "x",
          Namespace: "AWS/SageMaker",
          MetricName: "ApproximateBacklogSize",
          Statistic: "Average",
          Period: 60,
          EvaluationPeriods: 100,
          Threshold: 1,
          ComparisonOperator: "GreaterThanThreshold",
        }),
      ),
      "InvalidParameterValueException",
      /EvaluationPeriods: Period × EvaluationPeriods must be at most 3600 seconds/,
    );
    await cw.send(new DeleteAlarmsCommand({ AlarmNames: ["backlog"] }));
    await rejects(
      cw.send(new DeleteAlarmsCommand({ AlarmNames: ["backlog"] })),
      "ResourceNotFound",
      /backlog/,
    );
  });
});
