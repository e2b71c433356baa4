import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parseCustomAttributes } from "../../src/whisper/attributes.js";
import { modelServerOptionsFromEnv } from "../../src/whisper/config.js";
import { InvalidOptionError } from "../../src/whisper/engine.js";
import { findModelFile } from "../../src/whisper/model-dir.js";
import { tempDir } from "../helpers/fixtures.js";

describe("parseCustomAttributes", () => {
  it("reads every option, URL-decoding values", () => {
    const o = parseCustomAttributes(
      "language=ja, task=translate,prompt=Hello%2C%20world,temperature=0.2,beam_size=5,word_timestamps=true,vad=false,format=srt",
    );
    assert.deepEqual(o, {
      transcribe: {
        language: "ja",
        translate: true,
        prompt: "Hello, world",
        temperature: 0.2,
        beamSize: 5,
        wordTimestamps: true,
        vad: false,
      },
      format: "srt",
    });
    assert.deepEqual(parseCustomAttributes(undefined), { transcribe: {} });
    assert.equal(parseCustomAttributes("language=English").transcribe.language, "en");
    assert.equal(parseCustomAttributes("language=auto").transcribe.language, "auto");
  });

  const bad: Array<[string, string]> = [
    ["speed=2", "speed"],
    ["language=klingon", "language"],
    ["task=summarise", "task"],
    ["temperature=hot", "temperature"],
    ["temperature=1.5", "temperature"],
    ["beam_size=0", "beam_size"],
    ["beam_size=2.5", "beam_size"],
    ["word_timestamps=yes", "word_timestamps"],
    ["vad=1", "vad"],
    ["format=docx", "format"],
    ["prompt=%E0%A4%A", "prompt"],
    ["language=en,language=ja", "language"],
    ["language", "language"],
  ];
  for (const [header, field] of bad) {
    it(`rejects "${header}" naming ${field}`, () => {
      assert.throws(
        () => parseCustomAttributes(header),
        (e: unknown) =>
          e instanceof InvalidOptionError && e.field === field && e.message.startsWith(`${field}: `),
      );
    });
  }
});

describe("modelServerOptionsFromEnv", () => {
  it("uses SageMaker's defaults", () => {
    assert.deepEqual(modelServerOptionsFromEnv({ KIKITORI_MODELS: tempDir() }), {
      port: 8080,
      host: "127.0.0.1",
      modelDir: "/opt/ml/model",
      maxConcurrency: 1,
      gpu: false,
      threads: undefined,
      vadModel: undefined,
    });
  });

  it("finds the VAD model in the model cache, or where KIKITORI_VAD_MODEL says ('' for none)", () => {
    const models = tempDir();
    writeFileSync(join(models, "ggml-silero-v6.2.0.bin"), "");
    assert.equal(
      modelServerOptionsFromEnv({ KIKITORI_MODELS: models }).vadModel,
      join(models, "ggml-silero-v6.2.0.bin"),
    );
    assert.equal(
      modelServerOptionsFromEnv({ KIKITORI_MODELS: models, KIKITORI_VAD_MODEL: "/v.bin" }).vadModel,
      "/v.bin",
    );
    assert.equal(
      modelServerOptionsFromEnv({ KIKITORI_MODELS: models, KIKITORI_VAD_MODEL: "" }).vadModel,
      undefined,
    );
  });

  it("reads the variables and names a bad one", () => {
    const o = modelServerOptionsFromEnv({
      SAGEMAKER_BIND_TO_PORT: "9000",
      KIKITORI_BIND_HOST: "0.0.0.0",
      SM_MODEL_DIR: "/m",
      KIKITORI_MAX_CONCURRENCY: "2",
      KIKITORI_GPU: "true",
      KIKITORI_THREADS: "3",
      KIKITORI_VAD_MODEL: "",
    });
    assert.deepEqual(o, {
      port: 9000,
      host: "0.0.0.0",
      modelDir: "/m",
      maxConcurrency: 2,
      gpu: true,
      threads: 3,
      vadModel: undefined,
    });
    assert.throws(
      () => modelServerOptionsFromEnv({ SAGEMAKER_BIND_TO_PORT: "eighty" }),
      /SAGEMAKER_BIND_TO_PORT/,
    );
    assert.throws(
      () => modelServerOptionsFromEnv({ KIKITORI_MAX_CONCURRENCY: "0" }),
      /KIKITORI_MAX_CONCURRENCY/,
    );
    assert.throws(() => modelServerOptionsFromEnv({ KIKITORI_GPU: "maybe" }), /KIKITORI_GPU/);
  });
});

describe("findModelFile", () => {
  const ggml = Buffer.concat([Buffer.from("lmgg", "latin1"), Buffer.alloc(60)]);

  it("picks the one ggml *.bin, ignoring other files", async () => {
    const dir = tempDir();
    await writeFile(join(dir, "model.bin"), ggml);
    await writeFile(join(dir, "vocab.bin"), "not a model");
    await writeFile(join(dir, "README.md"), "hi");
    assert.equal(await findModelFile(dir), join(dir, "model.bin"));
  });

  it("follows the manifest, and refuses one pointing outside the directory", async () => {
    const dir = tempDir();
    await writeFile(join(dir, "a.bin"), ggml);
    await writeFile(join(dir, "b.bin"), ggml);
    await assert.rejects(findModelFile(dir), /2 ggml models .*kikitori-model\.json/);
    await writeFile(join(dir, "kikitori-model.json"), JSON.stringify({ file: "b.bin" }));
    assert.equal(await findModelFile(dir), join(dir, "b.bin"));
    await writeFile(join(dir, "kikitori-model.json"), JSON.stringify({ file: "../etc/passwd" }));
    await assert.rejects(findModelFile(dir), /must stay inside the model directory/);
    await writeFile(join(dir, "kikitori-model.json"), "{");
    await assert.rejects(findModelFile(dir), /not valid JSON/);
  });

  it("says what is missing", async () => {
    const dir = tempDir();
    await assert.rejects(findModelFile(dir), /no ggml whisper model/);
    await assert.rejects(findModelFile(join(dir, "nope")), /cannot read model directory/);
  });
});
