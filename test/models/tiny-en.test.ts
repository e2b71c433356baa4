// Real weights: the tiny.en model produced by scripts/fetch-test-model (converted from the
// faster-whisper CTranslate2 weights when the published ggml file cannot be downloaded).
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, open, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import assert from "node:assert/strict";
import { readGgmlInfo, GGML_F16, GGML_F32 } from "../../src/models/ggml.js";
import { normalize, testdataDir, modelPath } from "../helpers/fixtures.js";
import { loadInWhisper } from "./helpers/whisper.js";

const missing = existsSync(modelPath)
  ? undefined
  : `no ${modelPath}: run scripts/fetch-test-model or set KIKITORI_TEST_MODEL`;

test("tiny.en ggml file matches the ct2-to-ggml.md §7 checklist", { skip: missing }, async () => {
  const info = await readGgmlInfo(modelPath);
  assert.equal(info.fileBytes, 77_704_715);
  assert.equal(info.tensors.length, 167);
  assert.deepEqual(Object.values(info.hparams), [51864, 1500, 384, 6, 4, 448, 384, 6, 4, 80, 1]);
  assert.equal(info.vocabCount, 50257);
  assert.equal(info.tensors[0]!.offset - 12 - 4 * 2 - "encoder.positional_embedding".length, 586_235);
  const names = new Set(info.tensors.map((t) => t.name));
  assert.equal(names.size, 167);
  assert.ok(
    ![...names].some((n) => n.endsWith("key.bias") || n.includes("proj")),
    "no key bias or head tensors",
  );
  const byName = new Map(info.tensors.map((t) => [t.name, t]));
  assert.deepEqual(byName.get("encoder.conv1.bias")?.ne, [1, 384]);
  assert.equal(byName.get("encoder.conv1.weight")?.type, GGML_F16);
  assert.equal(byName.get("decoder.positional_embedding")?.type, GGML_F32);
  assert.deepEqual(byName.get("decoder.token_embedding.weight")?.ne, [384, 51864]);
  const fh = await open(modelPath, "r");
  try {
    // Encoder positions are OpenAI's sinusoids (stored at float16 precision by CTranslate2).
    const pos = byName.get("encoder.positional_embedding")!;
    const table = Buffer.alloc(pos.bytes);
    await fh.read(table, 0, table.length, pos.offset);
    const inc = Math.log(10000) / (384 / 2 - 1);
    let maxErr = 0;
    for (let i = 0; i < 1500 * 384; i++) {
      const [p, k] = [Math.floor(i / 384), i % 384];
      const t = p * Math.exp(-inc * (k % 192));
      maxErr = Math.max(maxErr, Math.abs(table.readFloatLE(4 * i) - (k < 192 ? Math.sin(t) : Math.cos(t))));
    }
    assert.ok(maxErr < 1e-3, `encoder positions differ from sinusoids by ${maxErr}`);
    const mel = Buffer.alloc(64_320);
    await fh.read(mel, 0, mel.length, 56);
    assert.equal(
      createHash("sha256").update(mel).digest("hex"),
      "4f2701b1d287d74a0dc9871026e9519d98cb76426615f2539b0d151a0ae4ec2e",
    );
    const vocab = Buffer.alloc(521_859);
    await fh.read(vocab, 0, vocab.length, 64_376);
    assert.equal(
      createHash("sha256").update(vocab).digest("hex"),
      "80bb8ed25d76fd80db81de4faafb69cdeb7547c2aad716400347f10a6ab265c2",
    );
  } finally {
    await fh.close();
  }
});

const jfk = path.join(testdataDir, "jfk.wav");
test(
  "whisper.cpp loads tiny.en and transcribes jfk.wav",
  { skip: missing ?? (existsSync(jfk) ? undefined : `no ${jfk}`), timeout: 300_000 },
  async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "kikitori-models-test-"));
    try {
      const pcmFile = path.join(dir, "jfk.s16le");
      await writeFile(
        pcmFile,
        execFileSync("ffmpeg", ["-v", "error", "-i", jfk, "-f", "s16le", "-ac", "1", "-ar", "16000", "-"], {
          maxBuffer: 1 << 26,
        }),
      );
      const { result, log } = await loadInWhisper(modelPath, pcmFile);
      for (const line of [
        /n_vocab\s*=\s*51864/,
        /ftype\s*=\s*1/,
        /type\s*=\s*1 \(tiny\)/,
        /adding 1607 extra tokens/,
        /model size\s*=\s*77\.11 MB/,
      ]) {
        assert.match(log, line);
      }
      assert.doesNotMatch(log, /unknown tensor|wrong shape|wrong size/);
      const r = result as { result: string; segments: { text: string; t0: number; t1: number }[] };
      assert.equal(
        normalize(r.result),
        normalize(
          "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.",
        ),
      );
      assert.ok(r.segments.length > 0 && r.segments.at(-1)!.t1 <= 11_500);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
);
