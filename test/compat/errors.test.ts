import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Sha256 } from "@aws-crypto/sha256-js";
import { HttpRequest } from "@smithy/protocol-http";
import { SignatureV4 } from "@smithy/signature-v4";
import {
  CreateEndpointConfigCommand,
  CreateModelCommand,
  CreateTrainingJobCommand,
  DescribeEndpointCommand,
  ListModelsCommand,
  SageMakerClient,
} from "@aws-sdk/client-sagemaker";
import { InvokeEndpointAsyncCommand, SageMakerRuntimeClient } from "@aws-sdk/client-sagemaker-runtime";
import { CREDS, rejects, startCompatServer, type CompatServer } from "./helpers.js";

interface Raw {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** A SigV4-signed request built by hand, for shapes no SDK would send. */
async function signed(
  url: string,
  o: { service: string; path?: string; headers?: Record<string, string>; body?: string; secret?: string },
): Promise<Raw> {
  const u = new URL(url);
  const signer = new SignatureV4({
    credentials: { accessKeyId: CREDS.accessKeyId, secretAccessKey: o.secret ?? CREDS.secretAccessKey },
    region: "us-east-1",
    service: o.service,
    sha256: Sha256,
  });
  const req = await signer.sign(
    new HttpRequest({
      method: "POST",
      hostname: u.hostname,
      port: Number(u.port),
      path: o.path ?? "/",
      headers: { host: u.host, ...o.headers },
      body: o.body ?? "",
    }),
  );
  return send(url, req.path, req.headers, o.body ?? "");
}

function send(url: string, path: string, headers: Record<string, string>, body: string): Promise<Raw> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const r = httpRequest(
      { host: u.hostname, port: u.port, method: "POST", path, headers, agent: false },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (text += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
      },
    );
    r.on("error", reject);
    r.end(body);
  });
}

const json = (op: string, body: string) => ({
  service: "sagemaker",
  headers: { "content-type": "application/x-amz-json-1.1", "x-amz-target": `SageMaker.${op}` },
  body,
});

describe("AWS front door: unsupported, malformed and unauthenticated requests", () => {
  let srv: CompatServer;
  let sm: SageMakerClient;
  before(async () => {
    srv = await startCompatServer();
    sm = new SageMakerClient({ endpoint: srv.url, region: "us-east-1", credentials: CREDS });
  });
  after(() => srv?.close());

  it("an unsupported SageMaker operation answers UnknownOperationException naming it", async () => {
    await rejects(
      sm.send(
        new CreateTrainingJobCommand({
          TrainingJobName: "t",
          AlgorithmSpecification: { TrainingInputMode: "File", TrainingImage: "x" },
          RoleArn: "arn:aws:iam::000000000000:role/r",
          OutputDataConfig: { S3OutputPath: "s3://b/o" },
          ResourceConfig: { VolumeSizeInGB: 1, InstanceCount: 1, InstanceType: "ml.m5.large" },
          StoppingCondition: { MaxRuntimeInSeconds: 60 },
        }),
      ),
      "UnknownOperationException",
      /CreateTrainingJob is not supported by kikitori/,
    );
  });

  it("an unsupported member answers ValidationException naming it", async () => {
    await sm.send(
      new CreateModelCommand({
        ModelName: "m1",
        PrimaryContainer: { Image: `local:${srv.noopModelServer}` },
      }),
    );
    await rejects(
      sm.send(
        new CreateEndpointConfigCommand({
          EndpointConfigName: "c1",
          ProductionVariants: [{ VariantName: "v", ModelName: "m1", InitialInstanceCount: 1 }],
          DataCaptureConfig: {
            InitialSamplingPercentage: 1,
            DestinationS3Uri: "s3://b/c",
            CaptureOptions: [],
          },
        }),
      ),
      "ValidationException",
      /DataCaptureConfig is not supported by kikitori/,
    );
  });

  it("an image kikitori cannot run fails CreateModel with the mapping table's message", async () => {
    await rejects(
      sm.send(
        new CreateModelCommand({
          ModelName: "m2",
          PrimaryContainer: {
            Image: "763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-inference:2.1",
          },
        }),
      ),
      "ValidationException",
      /kikitori cannot run image .*Use "kikitori\/whisper"/,
    );
  });

  it("missing endpoints are ValidationException (what boto3's waiters expect)", async () => {
    await rejects(
      sm.send(new DescribeEndpointCommand({ EndpointName: "nope" })),
      "ValidationException",
      /Could not find endpoint "nope"/,
    );
    const smr = new SageMakerRuntimeClient({ endpoint: srv.url, region: "us-east-1", credentials: CREDS });
    await rejects(
      smr.send(new InvokeEndpointAsyncCommand({ EndpointName: "nope", InputLocation: "s3://b/k" })),
      "ValidationError",
      /Endpoint nope of account 000000000000 not found/,
    );
  });

  it("bad JSON, a wrong target and missing required members are 400s in awsJson's shape", async () => {
    const bad = await signed(srv.url, json("ListModels", "{not json"));
    assert.equal(bad.status, 400);
    assert.equal(bad.headers["x-amzn-errortype"], "SerializationException");
    assert.equal(JSON.parse(bad.text).__type, "SerializationException");

    const wrong = await signed(srv.url, {
      ...json("X", "{}"),
      headers: { "content-type": "application/x-amz-json-1.1", "x-amz-target": "DynamoDB_20120810.GetItem" },
    });
    assert.equal(wrong.status, 400);
    assert.equal(JSON.parse(wrong.text).__type, "UnknownOperationException");
    assert.match(JSON.parse(wrong.text).message, /DynamoDB_20120810\.GetItem/);

    const missing = await signed(srv.url, json("CreateEndpoint", "{}"));
    assert.equal(missing.status, 400);
    assert.deepEqual(JSON.parse(missing.text), {
      __type: "ValidationException",
      message: "EndpointName is required (a string)",
    });
  });

  it("oversize headers are refused with 431 before any handler", async () => {
    const r = await send(
      srv.url,
      "/",
      { "x-amz-target": "SageMaker.ListModels", "x-big": "a".repeat(70_000) },
      "{}",
    );
    assert.equal(r.status, 431);
  });

  it("dot-dot keys and path extensions are 400s and write nothing outside the store", async () => {
    for (const key of ["a/../../escape.txt", "a/%2e%2e/%2e%2e/escape.txt"]) {
      const u = new URL(srv.url);
      const signer = new SignatureV4({
        credentials: CREDS,
        region: "us-east-1",
        service: "s3",
        sha256: Sha256,
        uriEscapePath: false,
      });
      const req = await signer.sign(
        new HttpRequest({
          method: "PUT",
          hostname: u.hostname,
          port: Number(u.port),
          path: `/kikitori/${key}`,
          headers: { host: u.host, "x-amz-content-sha256": "UNSIGNED-PAYLOAD", "content-length": "0" },
        }),
      );
      const r = await new Promise<number>((resolve, reject) => {
        const c = httpRequest(
          {
            host: u.hostname,
            port: u.port,
            method: "PUT",
            path: `/kikitori/${key}`,
            headers: req.headers,
            agent: false,
          },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        c.on("error", reject);
        c.end();
      });
      assert.equal(r, 400, key);
    }
    assert.equal(existsSync(join(srv.kikitori.config.dataDir, "escape.txt")), false);
    assert.equal(existsSync(join(srv.kikitori.config.dataDir, "..", "escape.txt")), false);

    const ext = await signed(srv.url, {
      service: "sagemaker",
      path: "/endpoints/nope/async-invocations",
      headers: { "x-amzn-sagemaker-inputlocation": "s3://kikitori/in", "x-amzn-sagemaker-filename": "../x" },
    });
    assert.equal(ext.status, 400);
    assert.equal(ext.headers["x-amzn-errortype"], "ValidationError");
    assert.match(
      JSON.parse(ext.text).message,
      /Filename: must be 1-255 letters, digits, spaces or \._-\+=@ without slashes/,
    );
  });

  it("a wrong secret or an unknown key is never accepted", async () => {
    const wrong = new SageMakerClient({
      endpoint: srv.url,
      region: "us-east-1",
      credentials: { ...CREDS, secretAccessKey: "wrong" },
      maxAttempts: 1,
    });
    await rejects(
      wrong.send(new ListModelsCommand({})),
      "InvalidSignatureException",
      /signature we calculated does not match/,
    );
    const unknown = new SageMakerClient({
      endpoint: srv.url,
      region: "us-east-1",
      credentials: { accessKeyId: "AKIDNOBODY", secretAccessKey: "x" },
      maxAttempts: 1,
    });
    await rejects(unknown.send(new ListModelsCommand({})), "UnrecognizedClientException", /AKIDNOBODY/);
    const unsigned = await send(
      srv.url,
      "/",
      { "content-type": "application/x-amz-json-1.1", "x-amz-target": "SageMaker.ListModels" },
      "{}",
    );
    assert.equal(unsigned.status, 403);
    assert.equal(JSON.parse(unsigned.text).__type, "MissingAuthenticationTokenException");
  });

  it("STS and IAM answer in awsQuery XML; an unknown role is NoSuchEntity", async () => {
    const form = { "content-type": "application/x-www-form-urlencoded; charset=utf-8" };
    const who = await signed(srv.url, {
      service: "sts",
      headers: form,
      body: "Action=GetCallerIdentity&Version=2011-06-15",
    });
    assert.equal(who.status, 200);
    assert.match(who.text, /<Account>000000000000<\/Account>/);
    assert.match(who.text, new RegExp(`<UserId>${CREDS.accessKeyId}</UserId>`));
    const role = await signed(srv.url, {
      service: "iam",
      headers: form,
      body: "Action=GetRole&Version=2010-05-08&RoleName=other",
    });
    assert.equal(role.status, 404);
    assert.match(
      role.text,
      /<ErrorResponse><Error><Type>Sender<\/Type><Code>NoSuchEntity<\/Code><Message>[^<]*other/,
    );
    const bad = await signed(srv.url, {
      service: "sts",
      headers: form,
      body: "Action=AssumeRole&Version=2011-06-15",
      secret: "wrong",
    });
    assert.equal(bad.status, 403);
    assert.match(bad.text, /<Code>InvalidSignatureException<\/Code>/);
    const op = await signed(srv.url, {
      service: "sts",
      headers: form,
      body: "Action=AssumeRole&Version=2011-06-15",
    });
    assert.equal(op.status, 400);
    assert.match(op.text, /AssumeRole is not supported by kikitori/);
  });
});
