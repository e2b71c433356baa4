import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { defaultModelsDir } from "../../src/config.js";
import { cjkCharacterErrors, errorRate } from "../../src/eval/metrics.js";
import { WhisperEngine } from "../../src/whisper/index.js";
import { baseModelPath, noBaseModel, openaiCheckpoint } from "../helpers/fixtures.js";
import { CREDS, makeModelTar, startCompatServer, testdataDir, type CompatServer } from "./helpers.js";

const run = promisify(execFile);
const script = join(import.meta.dirname, "sagemaker_async_flow.py");

const hasBoto3 = () =>
  run("python3", ["-c", "import boto3"]).then(
    () => true,
    () => false,
  );

async function flow(srv: CompatServer, env: Record<string, string>) {
  const { stdout } = await run("python3", [script], {
    timeout: 240_000,
    env: {
      ...process.env,
      KK_URL: srv.url,
      AWS_ACCESS_KEY_ID: CREDS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: CREDS.secretAccessKey,
      AWS_DEFAULT_REGION: "eu-west-1",
      AWS_CONFIG_FILE: "/dev/null",
      AWS_SHARED_CREDENTIALS_FILE: "/dev/null",
      TMPDIR: srv.dir,
      ...env,
    },
  });
  return JSON.parse(stdout.trim().split("\n").pop()!) as Record<string, unknown>;
}

describe("boto3: the SageMaker async notebook flow against kikitori (SigV4)", () => {
  let srv: CompatServer;
  before(async () => {
    srv = await startCompatServer();
  });
  after(() => srv?.close());

  it("no-op local-command model: upload, create, wait, autoscale, invoke, poll, download, delete", async (t) => {
    if (!(await hasBoto3())) return t.skip("python3 with boto3 is not installed");
    const report = await flow(srv, {
      KK_NAME: "noop-flow",
      KK_IMAGE: `local:${srv.noopModelServer}`,
      KK_MODEL_TAR: await makeModelTar(srv.dir, { "weights.txt": "not really weights\n" }),
      KK_AUDIO: await srv.speechFile(),
      KK_CHECK: "noop",
    });
    assert.equal(report.account, "000000000000");
    assert.equal(report.role, "arn:aws:iam::000000000000:role/kikitori-execution-role");
    assert.equal(report.endpoint_arn, "arn:aws:sagemaker:eu-west-1:000000000000:endpoint/noop-flow");
    assert.deepEqual(report.instances, [1, 1]);
    assert.ok((report.model_files as string[]).includes("weights.txt"));
  });

  it("built-in Whisper with tiny.en: the JFK transcript matches its reference", async (t) => {
    if (!(await hasBoto3())) return t.skip("python3 with boto3 is not installed");
    const model = join(defaultModelsDir(), "ggml-tiny.en.bin");
    if (!existsSync(model)) return t.skip(`no tiny.en model at ${model} (scripts/fetch-test-model)`);
    const jfk = join(testdataDir, "jfk.wav");
    const report = await flow(srv, {
      KK_NAME: "whisper-flow",
      KK_IMAGE: "kikitori/whisper",
      KK_MODEL_TAR: await makeModelTar(srv.dir, { "ggml-tiny.en.bin": model }),
      KK_AUDIO: jfk,
      KK_CHECK: "whisper",
      KK_REFERENCE: readFileSync(join(testdataDir, "jfk.txt"), "utf8"),
    });
    assert.match(String(report.transcript), /ask not what your country can do for you/i);
  });

  it(
    "the seed's archive: model.tar.gz holding OpenAI's base.pt, a Japanese clip, Japanese text as the ggml model gives it",
    { timeout: 600_000 },
    async (t) => {
      if (!(await hasBoto3())) return t.skip("python3 with boto3 is not installed");
      if (noBaseModel) return t.skip(noBaseModel);
      if (!existsSync(openaiCheckpoint)) return t.skip(`no ${openaiCheckpoint} (scripts/fetch-test-model)`);
      const clip = join(testdataDir, "jsut_basic5000_0001_ja.wav");
      // Exactly what the seed did: `tar -czf model.tar.gz base.pt`.
      const report = await flow(srv, {
        KK_NAME: "seed-flow",
        KK_IMAGE: "kikitori/whisper",
        KK_MODEL_TAR: await makeModelTar(srv.dir, { "base.pt": openaiCheckpoint }),
        KK_AUDIO: clip,
        KK_CHECK: "japanese",
      });
      assert.equal(report.language, "ja");
      const reference = readFileSync(join(testdataDir, "jsut_basic5000_0001_ja.txt"), "utf8");
      const cer = errorRate(cjkCharacterErrors(reference, String(report.transcript)));
      t.diagnostic(
        `transcript ${report.transcript} (CER ${(cer * 100).toFixed(1)}% against ${reference.trim()})`,
      );
      assert.ok(cer < 0.3, `CER ${cer}: ${report.transcript}`);
      // The converted checkpoint is the ggml base model byte for byte (test/models/pt-import.test.ts), so the
      // engine on the ggml file must give the same text.
      const engine = await WhisperEngine.load(baseModelPath, { threads: 2 });
      try {
        assert.equal(String(report.transcript), (await engine.transcribe(clip)).text);
      } finally {
        await engine.close();
      }
    },
  );
});
