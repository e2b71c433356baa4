import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { copyFileSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { defaultModelsDir } from "../../src/config.js";
import { repoRoot } from "../helpers/fixtures.js";
import { CREDS, makeModelTar, startCompatServer, testdataDir, type CompatServer } from "./helpers.js";

const run = promisify(execFile);
const model = join(defaultModelsDir(), "ggml-tiny.en.bin");
const hasSdk = () =>
  run("python3", ["-c", "import sagemaker"]).then(
    () => true,
    () => false,
  );

/**
 * Runs the notebook until its last cell has printed its JSON line, and returns that line; then stops the
 * interpreter. Why stop it: `get_result()` starts a thread that waits for the failure object with the
 * notebook's WaiterConfig (240 polls, 1 s apart) even after the output has arrived, and Python waits for that
 * thread at exit: 3-4 minutes a run, two thirds of this test, that a notebook kernel never waits for. What the
 * thread is waiting to see, a failure object, is asserted to be absent instead.
 */
function runNotebook(cwd: string, env: Record<string, string>): Promise<string> {
  const child = spawn("python3", [join(import.meta.dirname, "sagemaker_notebook.py")], {
    cwd,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), 600_000);
    child.stdout.on("data", (c: Buffer) => {
      out += c.toString();
      // The SDK's waiters print progress marks ("!") before the last cell's JSON, on the same line.
      const line = out.split("\n").find((l, i, all) => i < all.length - 1 && l.includes('{"bucket"'));
      if (line === undefined) return;
      clearTimeout(timer);
      child.kill("SIGKILL");
      resolve(line.slice(line.indexOf("{")));
    });
    child.stderr.on("data", (c: Buffer) => (err += c.toString()));
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the notebook ended (${code ?? signal}) before its last cell: ${out}\n${err}`));
    });
  });
}

/**
 * The sagemaker Python SDK 2.x (pinned by scripts/setup) running a Whisper notebook written for AWS, with
 * nothing changed but the environment `kikitori aws-env` prints. The user's role is made once with the AWS
 * CLI, as on AWS. Run twice: re-running the cells reuses the model (SageMaker's "already existing" answer).
 */
describe("sagemaker SDK: an AWS notebook, unmodified, against kikitori", () => {
  let srv: CompatServer;
  before(async () => {
    srv = await startCompatServer();
  });
  after(() => srv?.close());

  it("default_bucket, upload_data, create_model, deploy async, predict_async, get_result, update_endpoint, delete_endpoint; twice", async (t) => {
    if (!(await hasSdk())) return t.skip("python3 with the sagemaker SDK is not installed (scripts/setup)");
    if (!existsSync(model)) return t.skip(`no tiny.en model at ${model} (scripts/fetch-test-model)`);
    const base = {
      ...process.env,
      AWS_CONFIG_FILE: "/dev/null",
      AWS_SHARED_CREDENTIALS_FILE: "/dev/null",
      SAGEMAKER_SUPPRESS_V2_WARNING: "1",
      KIKITORI_ACCESS_KEY_ID: CREDS.accessKeyId,
      KIKITORI_SECRET_ACCESS_KEY: CREDS.secretAccessKey,
    };
    const { stdout: exports } = await run(
      process.execPath,
      [
        join(repoRoot, "bin", "kikitori.js"),
        "aws-env",
        "--url",
        srv.url,
        "--region",
        "eu-west-1",
        "--config-file",
        join(srv.dir, "sm.yaml"),
      ],
      { env: base },
    );
    const env: Record<string, string> = { ...base };
    for (const m of exports.matchAll(/^export (\w+)='([^']*)'$/gm)) env[m[1]!] = m[2]!;
    assert.equal(env.AWS_ENDPOINT_URL, srv.url);
    assert.match(
      readFileSync(join(srv.dir, "sm.yaml"), "utf8"),
      /DefaultS3Bucket: 'sagemaker-eu-west-1-000000000000'/,
    );

    // The user's execution role, made once (as in any AWS account).
    const trust = JSON.stringify({
      Version: "2012-10-17",
      Statement: [
        { Effect: "Allow", Principal: { Service: "sagemaker.amazonaws.com" }, Action: "sts:AssumeRole" },
      ],
    });
    await run(
      "aws",
      ["iam", "create-role", "--role-name", "SageMaker-local", "--assume-role-policy-document", trust],
      { env },
    );
    await run(
      "aws",
      [
        "iam",
        "attach-role-policy",
        "--role-name",
        "SageMaker-local",
        "--policy-arn",
        "arn:aws:iam::aws:policy/AmazonSageMakerFullAccess",
      ],
      { env },
    );

    const cwd = srv.dir;
    copyFileSync(await makeModelTar(srv.dir, { "ggml-tiny.en.bin": model }), join(cwd, "model.tar.gz"));
    copyFileSync(join(testdataDir, "jfk.wav"), join(cwd, "audio.wav"));
    for (const round of [1, 2]) {
      const r = JSON.parse(await runNotebook(cwd, env)) as Record<string, string>;
      assert.equal(r.bucket, "sagemaker-eu-west-1-000000000000", `round ${round}`);
      assert.equal(r.role, "arn:aws:iam::000000000000:role/SageMaker-local");
      assert.match(r.transcript!, /ask not what your country can do for you/i, `round ${round}`);
      assert.match(
        r.output_path!,
        /^s3:\/\/sagemaker-eu-west-1-000000000000\/whisper-async\/output\/.+\.out$/,
      );
      assert.equal(r.status_after_update, "InService");
      assert.notEqual(r.config_after_update, "whisper-async-endpoint", "update_endpoint made a new config");
      const { stdout: failures } = await run(
        "aws",
        [
          ...["s3api", "list-objects-v2", "--bucket", "sagemaker-eu-west-1-000000000000"],
          ...["--prefix", "whisper-async/failure/", "--query", "length(Contents || `[]`)"],
        ],
        { env },
      );
      assert.equal(failures.trim(), "0", `round ${round}: no failure object`);
    }
  });
});
