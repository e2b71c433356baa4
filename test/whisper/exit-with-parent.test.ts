/**
 * A built-in model server never outlives the service that started it: its parent is killed with SIGKILL
 * (no handler runs, nothing is cleaned up), and the model server, started through the real
 * spawnModelServer with the real tiny.en model, notices its stdin pipe close and exits.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { freePort, ping } from "../../src/instances/model-server.js";
import { noModel, repoRoot, tempDir } from "../helpers/fixtures.js";
import { waitFor } from "../helpers/server.js";
import { modelDir } from "./helpers.js";

/** Running (a zombie waiting for whoever adopted it to reap it has exited: it counts as gone). */
const alive = (pid: number) => {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
};

test(
  "the built-in model server exits when its parent is killed with SIGKILL",
  { skip: noModel },
  async () => {
    const port = await freePort();
    const dir = await modelDir(tempDir("kk-orphan-"));
    // The parent: a Node process that starts the model server as the instance manager does, prints its
    // pid, and stays alive until killed.
    const parentScript = `
    import { spawnModelServer } from ${JSON.stringify(join(repoRoot, "src/instances/model-server.ts"))};
    const child = spawnModelServer({ instanceId: "orphan-test", labels: {}, image: { kind: "builtin" },
      port: ${port}, modelDir: ${JSON.stringify(dir)}, environment: {}, maxConcurrency: 1 });
    console.log(child.pid);
    setInterval(() => {}, 1000);`;
    const parent = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", parentScript], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const pid = await new Promise<number>((resolve, reject) => {
      parent.stdout!.once("data", (c: Buffer) => resolve(Number(c.toString().trim())));
      parent.once("exit", (code) => reject(new Error(`the parent exited with ${code}`)));
    });
    try {
      assert.ok(Number.isInteger(pid) && pid > 0, `a pid: ${pid}`);
      await waitFor(async () => (await ping(port, 1000)) === 200, 60_000, "the model server answers /ping");
      parent.kill("SIGKILL");
      await new Promise((r) => parent.once("exit", r));
      await waitFor(() => Promise.resolve(!alive(pid)), 20_000, "the orphaned model server to exit");
      assert.equal(await ping(port, 1000), 0, "nothing listens on the instance's port any more");
    } finally {
      parent.kill("SIGKILL");
      if (alive(pid)) process.kill(pid, "SIGKILL");
    }
  },
);
