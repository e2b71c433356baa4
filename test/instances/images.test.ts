import { test } from "node:test";
import assert from "node:assert/strict";
import {
  containerRunArgs,
  explainContainerFailure,
  type ContainerRuntime,
} from "../../src/instances/container.js";
import { resolveImage } from "../../src/instances/images.js";
import { hostname } from "node:os";

const docker: ContainerRuntime = { command: "docker", globalArgs: [], runArgs: [] };
const found = () => ({ runtime: docker, why: "" });

test("images resolve to the built-in server, a local command, or a container where a runtime answers", () => {
  assert.deepEqual(resolveImage("kikitori/whisper"), { kind: "builtin" });
  assert.deepEqual(resolveImage("123.dkr.ecr.us-east-1.amazonaws.com/kikitori-whisper:0.1"), {
    kind: "builtin",
  });
  assert.deepEqual(
    resolveImage("local:/opt/m/serve --fast", found, { allowAll: false, commands: ["/opt/m/serve"] }),
    {
      kind: "process",
      command: "/opt/m/serve",
      args: ["--fast"],
    },
  );
  // A local command runs as the service's user: refused unless the operator allows it, naming the setting.
  assert.throws(() => resolveImage("local:/bin/sh -c id", found), /KIKITORI_ALLOW_LOCAL_IMAGES=1/);
  assert.throws(
    () => resolveImage("local:/bin/sh", found, { allowAll: false, commands: ["/opt/m/serve"] }),
    /KIKITORI_LOCAL_IMAGE_COMMANDS=\/bin\/sh/,
  );
  assert.equal(resolveImage("local:/bin/sh", found, { allowAll: true, commands: [] }).kind, "process");
  assert.deepEqual(
    resolveImage("763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-inference:2.1", found),
    {
      kind: "container",
      runtime: docker,
      image: "763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-inference:2.1",
    },
  );
  assert.equal(resolveImage("localhost/kikitori/seed-whisper:2337e4779343", found).kind, "container");
  assert.deepEqual(resolveImage("container:my/model@sha256:" + "a".repeat(64), found).kind, "container");
  // Without a runtime, the error says what was tried and why each failed.
  assert.throws(
    () =>
      resolveImage("my/model:1", () => ({
        runtime: null,
        why: "docker info: not installed; podman info: not installed",
      })),
    /none does here: docker info: not installed; podman info: not installed/,
  );
  assert.throws(() => resolveImage("Not An Image!", found), /"Not An Image!" is not an image reference/);
  assert.throws(() => resolveImage("local:", found), /needs a command/);
});

test("a container runs as SageMaker runs it: port 8080 on loopback, model dir read-only at /opt/ml/model, serve", () => {
  const podman: ContainerRuntime = {
    command: "podman",
    globalArgs: ["--runtime", "runc"],
    runArgs: ["--ulimit", "nofile=1024:2048"],
  };
  assert.deepEqual(
    containerRunArgs(podman, {
      image: "my/model:1",
      name: "kikitori-i-1",
      port: 40123,
      modelDir: "/data/m",
      environment: { A: "b=c" },
      labels: { "kikitori.endpoint": "e" },
    }),
    [
      "--runtime",
      "runc",
      "run",
      "--rm",
      "--name",
      "kikitori-i-1",
      "--label",
      `kikitori.host=${hostname()}`,
      "--label",
      "kikitori.endpoint=e",
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
      "--ulimit",
      "nofile=1024:2048",
      "my/model:1",
      "serve",
    ],
  );
});

test("a runtime's failure on this host is explained with what to change", () => {
  // The exact messages of runc (rlimits refused in a sandbox), podman (no image, no registry) and others.
  const rlimits =
    "Error: runc: runc create failed: unable to start container process: error during container init: " +
    "error setting rlimits for ready process: error setting rlimit type 7: operation not permitted: OCI permission denied";
  assert.match(
    explainContainerFailure(rlimits) ?? "",
    /default_ulimits = \[\].*KIKITORI_CONTAINER_RUN_OPTIONS/,
  );
  const noImage =
    'Error: initializing source docker://localhost/nope:1: pinging container registry localhost: Get "https://localhost/v2/": dial tcp 127.0.0.1:443: connect: connection refused';
  assert.match(explainContainerFailure(noImage) ?? "", /not in the runtime's local store/);
  assert.match(
    explainContainerFailure('Error: default OCI runtime "crun" not found: invalid argument') ?? "",
    /install runc or crun.*--runtime runc/,
  );
  assert.match(
    explainContainerFailure(
      "Error: systemd cgroup flag passed, but systemd support for managing cgroups is not available",
    ) ?? "",
    /--cgroup-manager cgroupfs/,
  );
  assert.equal(
    explainContainerFailure("Traceback (most recent call last): ValueError: bad model"),
    undefined,
  );
});
