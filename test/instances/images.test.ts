import { test } from "node:test";
import assert from "node:assert/strict";
import { containerArgs, containerRuntime, resolveImage } from "../../src/instances/images.js";
import { startTestServer } from "../helpers/server.js";

test("images resolve to the built-in server, a local command, or a container where a runtime answers", () => {
  assert.deepEqual(resolveImage("kikitori/whisper"), { kind: "builtin" });
  assert.deepEqual(resolveImage("123.dkr.ecr.us-east-1.amazonaws.com/kikitori-whisper:0.1"), {
    kind: "builtin",
  });
  assert.deepEqual(resolveImage("local:/opt/m/serve --fast"), {
    kind: "process",
    command: "/opt/m/serve",
    args: ["--fast"],
  });
  const docker = () => "docker";
  assert.deepEqual(
    resolveImage("763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-inference:2.1", docker),
    {
      kind: "container",
      runtime: "docker",
      image: "763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-inference:2.1",
    },
  );
  assert.deepEqual(resolveImage("container:my/model@sha256:" + "a".repeat(64), docker).kind, "container");
  assert.throws(() => resolveImage("my/model:1", () => null), /none does here/);
  assert.throws(() => resolveImage("Not An Image!", docker), /is not an image reference/);
  assert.throws(() => resolveImage("local:", docker), /needs a command/);
});

test("a container runs as SageMaker runs it: port 8080 on loopback, model dir read-only at /opt/ml/model, serve", () => {
  assert.deepEqual(
    containerArgs({
      image: "my/model:1",
      name: "kikitori-1",
      port: 40123,
      modelDir: "/data/m",
      environment: { A: "b=c" },
    }),
    [
      "run",
      "--rm",
      "--name",
      "kikitori-1",
      "--publish",
      "127.0.0.1:40123:8080",
      "--volume",
      "/data/m:/opt/ml/model:ro",
      "--env",
      "A=b=c",
      "--env",
      "SAGEMAKER_BIND_TO_PORT=8080",
      "--env",
      "SM_MODEL_DIR=/opt/ml/model",
      "my/model:1",
      "serve",
    ],
  );
});

// The real thing needs a container daemon and a local image honouring the contract; neither runs on
// these machines (the docker client is installed, no engine), so this part skips here.
const image = process.env.KIKITORI_TEST_CONTAINER_IMAGE;
test(
  "a container image serves invocations through the same path",
  {
    skip: !image
      ? "set KIKITORI_TEST_CONTAINER_IMAGE to a local image honouring the contract"
      : !containerRuntime() && "no docker/podman daemon answers",
  },
  async () => {
    const k = await startTestServer();
    try {
      await k.api.endpoint("ctr", { image: `container:${image}` });
      const input = await k.api.put("input", "a.wav", Buffer.from("abc"));
      const id = (await k.api.ok("POST", "/v1/endpoints/ctr/invocations", { inputLocation: input }))
        .inferenceId;
      assert.equal((await k.api.waitTerminal(id)).state, "Succeeded");
    } finally {
      await k.close();
    }
  },
);
