/** The model server as the child process an instance driver starts. */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { after, describe, it } from "node:test";
import { noModel, tempDir } from "../helpers/fixtures.js";
import { modelDir } from "./helpers.js";

const main = resolve(fileURLToPath(import.meta.url), "../../../src/whisper/main.ts");

function start(env: Record<string, string>) {
  const child = spawn(process.execPath, ["--import", "tsx", main], {
    env: { ...process.env, SAGEMAKER_BIND_TO_PORT: "0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  after(() => void child.kill("SIGKILL"));
  let stderr = "";
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  const events = createInterface({ input: child.stdout });
  return { child, events, stderr: () => stderr };
}

describe("src/whisper/main.ts", () => {
  it("exits 1 naming the problem when the model directory has no model", async () => {
    const dir = tempDir();
    const { child, stderr } = start({ SM_MODEL_DIR: dir });
    const [code] = await once(child, "exit");
    assert.equal(code, 1);
    assert.match(stderr(), /no ggml whisper model .* in /);
  });

  it("exits 1 naming a bad variable", async () => {
    const { child, stderr } = start({ KIKITORI_MAX_CONCURRENCY: "lots" });
    const [code] = await once(child, "exit");
    assert.equal(code, 1);
    assert.match(stderr(), /KIKITORI_MAX_CONCURRENCY must be an integer/);
  });

  it("serves /ping from SM_MODEL_DIR and stops cleanly on SIGTERM", { skip: noModel }, async () => {
    const dir = tempDir();
    await mkdir(join(dir, "m"));
    const { child, events } = start({ SM_MODEL_DIR: await modelDir(join(dir, "m")) });
    let port = 0;
    for await (const line of events) {
      const e = JSON.parse(line);
      if (e.event === "listening") port = e.port;
      if (e.event === "model:loaded") break;
    }
    const ping = await fetch(`http://127.0.0.1:${port}/ping`);
    assert.equal(ping.status, 200);
    child.kill("SIGTERM");
    const [code] = await once(child, "exit");
    assert.equal(code, 0);
  });
});
