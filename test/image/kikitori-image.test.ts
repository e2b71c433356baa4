// kikitori's own image (the repository's Dockerfile), built by podman FROM a Debian base made from Debian's
// packages plus this host's Node.js (containers/build kikitori), then run: a CLI command that transcribes
// with the whisper.cpp compiled inside the image, and `serve`, the image's default command. Skips only
// where podman is not installed.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { dirname } from "node:path";
import { after, before, describe, it } from "node:test";
import { freePort } from "../../src/instances/model-server.js";
import { buildImage, noPodman, podman } from "../helpers/containers.js";
import { modelPath, normalize, testdata, testdataDir } from "../helpers/fixtures.js";
import { waitFor } from "../helpers/server.js";

describe("kikitori's image (Dockerfile) under podman", { skip: noPodman }, () => {
  let image: string;
  const served = `kikitori-image-test-${process.pid}`;
  before(async () => {
    image = await buildImage("kikitori");
  });
  after(async () => {
    await podman("rm", "--force", served).catch(() => {});
  });

  it("runs any kikitori command: `transcribe` decodes with ffmpeg and transcribes with the image's whisper.cpp", async () => {
    const text = await podman(
      "run",
      "--rm",
      "--volume",
      `${dirname(modelPath)}:/var/lib/kikitori/models:ro`,
      "--volume",
      `${testdataDir}:/in:ro`,
      image,
      "transcribe",
      "/in/jfk.mp3",
      "--format",
      "text",
      "--out",
      "-",
    );
    assert.equal(normalize(text), normalize(await readFile(testdata("jfk.txt"), "utf8")));
  });

  it("serves by default, on the container's own addresses, and stops cleanly on SIGTERM", async () => {
    const port = await freePort();
    await podman(
      "run",
      "--detach",
      "--name",
      served,
      "--publish",
      `127.0.0.1:${port}:7600`,
      "--env",
      "KIKITORI_ALLOW_OPEN_REMOTE=1",
      image,
    );
    const url = `http://127.0.0.1:${port}`;
    await waitFor(
      async () => (await fetch(`${url}/health`).catch(() => undefined))?.status === 200,
      120_000,
      "kikitori serve in the container",
      250,
    );
    assert.deepEqual(await (await fetch(`${url}/v1/models`)).json(), { models: [] });
    await podman("stop", "--time", "30", served);
    // Exit code 0: kikitori stopped on SIGTERM (a SIGKILL after the 30 s grace would give 137).
    assert.equal(await podman("inspect", "--format", "{{.State.ExitCode}}", served), "0");
  });
});
