/**
 * The whisper worker started from the TypeScript sources: a plain-JS bundle of worker.ts and its imports
 * beside the addon, forked without tsx, named by its inputs' contents (so an edited source gives a new one).
 */
import assert from "node:assert/strict";
import { fork } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { describe, it } from "node:test";
import { ADDON_PATH } from "../../src/whisper/native.js";
import { withoutTsx, workerEntry } from "../../src/whisper/worker-entry.js";
import { repoRoot } from "../helpers/fixtures.js";

describe("the whisper worker's entry", () => {
  it("drops tsx's loader from the parent's Node flags and keeps the others", () => {
    assert.deepEqual(withoutTsx(["--import", "tsx", "--max-old-space-size=512"]), [
      "--max-old-space-size=512",
    ]);
    assert.deepEqual(withoutTsx(["--import=tsx/esm", "--cpu-prof", "--require", "tsx/cjs"]), ["--cpu-prof"]);
    assert.deepEqual(withoutTsx(["--import", "./other.js"]), ["--import", "./other.js"]);
  });

  it("is a bundle beside the addon, named by its inputs, that runs on plain Node", async () => {
    const entry = await workerEntry();
    assert.equal(dirname(entry.file), dirname(ADDON_PATH));
    assert.match(basename(entry.file), /^worker-[0-9a-f]{16}\.mjs$/);
    assert.ok(!entry.execArgv.some((a) => a.includes("tsx")), `no tsx in ${entry.execArgv.join(" ")}`);
    assert.equal(await workerEntry(), await workerEntry(), "decided once per process");

    const inputs = JSON.parse(
      readFileSync(join(dirname(ADDON_PATH), "worker-inputs.json"), "utf8"),
    ) as string[];
    assert.ok(
      inputs.includes("src/whisper/worker.ts") && inputs.includes("src/whisper/addon.ts"),
      `${inputs}`,
    );
    const hash = createHash("sha256");
    for (const p of inputs)
      hash
        .update(p)
        .update("\0")
        .update(readFileSync(join(repoRoot, p)))
        .update("\0");
    assert.equal(basename(entry.file), `worker-${hash.digest("hex").slice(0, 16)}.mjs`);
    assert.ok(existsSync(entry.file));

    // Forked as the model's worker is, without tsx: it answers over IPC (here, that the model is missing).
    const missing = join(repoRoot, "no-such-model.bin");
    const child = fork(entry.file, [missing, "cpu"], {
      execArgv: entry.execArgv,
      serialization: "advanced",
      stdio: ["ignore", "ignore", "ignore", "ipc"],
    });
    const reply = await new Promise<{ type: string; message?: string }>((resolve, reject) => {
      child.once("message", resolve);
      child.once("exit", (code) => reject(new Error(`the worker exited (${code}) without a reply`)));
    });
    child.kill();
    assert.equal(reply.type, "loadFailed");
    assert.match(reply.message ?? "", /no-such-model\.bin/);
  });
});
