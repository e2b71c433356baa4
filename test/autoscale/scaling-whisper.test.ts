import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { defaultModelsDir, modelFile } from "../../src/config.js";
import { startTestServer, tempDir, waitFor } from "../helpers/server.js";

const model = modelFile({ modelsDir: defaultModelsDir() }, "tiny.en");
const skip = existsSync(model) ? false : `needs ${model} (run scripts/fetch-test-model)`;

test("scale from zero with the built-in Whisper server (tiny.en) and back", { skip }, async () => {
  const k = await startTestServer({ defaultModel: "tiny.en" });
  try {
    await k.api.endpoint("zero", { image: "kikitori/whisper" }, { initialInstanceCount: 0 });
    await k.api.scaleFromZero("zero", 2);
    const wav = join(tempDir(), "hello.wav");
    execFileSync("espeak-ng", ["-w", wav, "Hello world, this is a test."]);
    const input = await k.api.put("input", "hello.wav", readFileSync(wav), "audio/wav");
    const t0 = Date.now();
    const id = (await k.api.ok("POST", "/v1/endpoints/zero/invocations", { inputLocation: input }))
      .inferenceId;
    let inServiceMs = 0;
    await waitFor(
      () => {
        if (k.manager.instancesOf("zero").some((i) => i.state === "InService")) inServiceMs = Date.now() - t0;
        return inServiceMs > 0;
      },
      30_000,
      "InService",
      5,
    );
    const done = await k.api.waitTerminal(id, 180_000);
    assert.equal(done.state, "Succeeded", JSON.stringify(done.error));
    assert.match((await k.api.getObject(done.outputLocation)).text, /world.*test/i);
    console.log(`scale-from-zero (tiny.en): InService ${inServiceMs} ms, result ${Date.now() - t0} ms`);
    await waitFor(async () => k.manager.instancesOf("zero").length === 0, 20_000, "back to zero", 100);
    const acts = (await k.api.ok("GET", "/v1/endpoints/zero/scaling-activities")).activities;
    assert.deepEqual(
      acts
        .map((a: { FromCapacity: number; ToCapacity: number }) => `${a.FromCapacity}->${a.ToCapacity}`)
        .reverse(),
      ["0->1", "1->0"],
    );
  } finally {
    await k.close();
  }
});
