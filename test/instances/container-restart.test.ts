// A container outlives a kikitori killed with SIGKILL (its runtime's client dies, the container does not):
// the restarted service removes it and starts the endpoint's instance again. Real podman, the seed-style
// image (containers/build seed-whisper), kikitori as its own process. Skips only where podman is not installed.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { makeModelTar } from "../compat/helpers.js";
import { buildImage, noPodman, podman } from "../helpers/containers.js";
import { repoRoot } from "../helpers/fixtures.js";
import { serveProcess, tempDir, waitFor } from "../helpers/server.js";

const run = promisify(execFile);

test(
  "kill -9 kikitori: its container lives on until the restarted service removes it and starts a new one",
  { skip: noPodman },
  async () => {
    const image = await buildImage("seed-whisper");
    const ct2 = (await run(join(repoRoot, "scripts", "fetch-test-model"), ["--ct2"])).stdout.trim();
    const dataDir = tempDir("kk-ctr-restart-");
    const endpoint = `restart-${process.pid}`;
    const running = async () =>
      (
        await podman(
          "ps",
          "--filter",
          `label=kikitori.endpoint=${endpoint}`,
          "--filter",
          "status=running",
          "--format",
          "{{.Names}}",
        )
      )
        .split("\n")
        .filter(Boolean);
    const files = ["config.json", "model.bin", "tokenizer.json", "vocabulary.txt"];
    const tar = await makeModelTar(dataDir, Object.fromEntries(files.map((f) => [f, join(ct2, f)])));

    let { child, api } = await serveProcess(dataDir);
    try {
      const model = await api.put("models", "tiny.en/model.tar.gz", await readFile(tar));
      await api.endpoint(endpoint, { image: `container:${image}`, modelDataUrl: model });
      const [first, ...others] = await running();
      assert.ok(first && !others.length);

      child.kill("SIGKILL");
      await new Promise((r) => child.once("exit", r));
      assert.deepEqual(await running(), [first], "the container outlives the killed service");

      ({ child, api } = await serveProcess(dataDir));
      await waitFor(
        async () => {
          const now = await running();
          return now.length === 1 && now[0] !== first;
        },
        120_000,
        "the orphan removed and a new container running",
        250,
      );
      assert.deepEqual(
        await podman("ps", "--all", "--filter", `name=${first}`, "--format", "{{.Names}}"),
        "",
        "the orphaned container is gone, not only stopped",
      );
    } finally {
      // SIGTERM drains: the new container is stopped with the service.
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        await new Promise((r) => child.once("exit", r));
      }
    }
    assert.deepEqual(await running(), []);
  },
);
