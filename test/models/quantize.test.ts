/**
 * kikitori's TypeScript quantizer against ggml's own reference quantizer (ggml_quantize_chunk, compiled
 * into kikitori's whisper.cpp addon from the same sources as whisper.cpp's quantize tool): byte for byte,
 * on crafted blocks and on every quantized tensor of the real tiny.en model.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileReader } from "../../src/models/file-reader.js";
import { halfToFloat } from "../../src/models/fp16.js";
import { readGgmlInfo } from "../../src/models/ggml.js";
import {
  QUANT_TYPES,
  QUANT_TYPE_NAMES,
  modelTypeName,
  quantizeModel,
  quantizeRows,
  splitQuantName,
} from "../../src/models/quantize.js";
import { loadAddon } from "../../src/whisper/native.js";
import { WhisperEngine } from "../../src/whisper/index.js";
import { modelPath, testdataDir } from "../helpers/fixtures.js";

const addon = loadAddon();

/** Blocks that probe the rounding edges: ties, equal magnitudes of both signs, zeros, a lone value, tiny values. */
function crafted(): Float32Array {
  const blocks: number[][] = [
    Array.from({ length: 32 }, (_, j) => (j - 16) / 16),
    Array.from({ length: 32 }, (_, j) => (j % 2 ? 1 : -1) * 0.5),
    Array.from({ length: 32 }, () => 0),
    Array.from({ length: 32 }, (_, j) => (j === 7 ? -3.25 : 0)),
    Array.from({ length: 32 }, (_, j) => 1e-8 * (j - 10)),
    Array.from({ length: 32 }, (_, j) => ((j * 7919) % 97) / 97 - 0.5 + (j === 31 ? 8.5 : 0)),
    Array.from({ length: 32 }, (_, j) => (127 * ((j % 5) - 2)) / 2 + 0.5),
  ];
  let seed = 12345;
  for (let b = 0; b < 50; b++)
    blocks.push(
      Array.from({ length: 32 }, () => {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff;
        return ((seed / 0x7fffffff) * 2 - 1) * 10 ** ((b % 7) - 4);
      }),
    );
  return new Float32Array(blocks.flat());
}

describe("quantize: TypeScript = ggml's reference quantizer", () => {
  for (const type of QUANT_TYPE_NAMES)
    test(`${type} on crafted and random blocks`, () => {
      const data = crafted();
      const mine = quantizeRows(type, data, 32);
      const ggml = addon.quantize(type, data, 32);
      assert.equal(mine.length, (data.length / 32) * QUANT_TYPES[type].blockBytes);
      assert.deepEqual(Buffer.from(mine), Buffer.from(ggml));
    });

  test("rows that do not divide into blocks of 32 are refused", () => {
    assert.throws(() => quantizeRows("q8_0", new Float32Array(48), 48), /blocks of 32/);
  });

  test("model names carry the type", () => {
    assert.deepEqual(splitQuantName("tiny.en-q5_1"), { base: "tiny.en", type: "q5_1" });
    assert.deepEqual(splitQuantName("large-v3"), { base: "large-v3", type: undefined });
  });
});

describe(
  "quantize: the real tiny.en model",
  { skip: !existsSync(modelPath) && `no model at ${modelPath}` },
  () => {
    let dir: string;
    before(() => {
      dir = mkdtempSync(join(tmpdir(), "kikitori-quantize-"));
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    test("q5_1: every 2-D weight matches ggml byte for byte, the rest is copied, and whisper.cpp transcribes with it", async () => {
      const out = join(dir, "tiny.en-q5_1.bin");
      await quantizeModel(modelPath, out, "q5_1");
      const [src, dst] = await Promise.all([readGgmlInfo(modelPath), readGgmlInfo(out)]);
      assert.equal(dst.hparams.ftype, 2000 + QUANT_TYPES.q5_1.ftype);
      assert.equal(await modelTypeName(out), "q5_1");
      assert.equal(dst.tensors.length, src.tensors.length);
      const rs = await FileReader.open(modelPath);
      const rd = await FileReader.open(out);
      try {
        let quantized = 0;
        for (const [i, t] of src.tensors.entries()) {
          const q = dst.tensors[i]!;
          assert.equal(q.name, t.name);
          assert.deepEqual(q.ne, t.ne);
          const data = await rs.read(t.offset, t.bytes, t.name);
          const written = await rd.read(q.offset, q.bytes, q.name);
          if (q.type === QUANT_TYPES.q5_1.type) {
            quantized++;
            const f32 = new Float32Array(t.bytes / 2);
            for (let k = 0; k < f32.length; k++) f32[k] = halfToFloat(data.readUInt16LE(2 * k));
            assert.ok(
              Buffer.from(addon.quantize("q5_1", f32, t.ne[0]!)).equals(written),
              `${t.name} differs from ggml`,
            );
          } else {
            assert.ok(data.equals(written), `${t.name} is copied as it was`);
          }
        }
        // tiny has 4 encoder and 4 decoder blocks of attention and MLP weights, plus the token embedding.
        assert.ok(quantized >= 40, `${quantized} tensors quantized`);
      } finally {
        await rs.close();
        await rd.close();
      }
      const engine = await WhisperEngine.load(out, { threads: 2 });
      try {
        const t = await engine.transcribe(join(testdataDir, "jfk.wav"), { language: "en" });
        assert.match(t.text.toLowerCase(), /ask not what your country can do for you/);
      } finally {
        await engine.close();
      }
    });

    test("an already quantized model is refused, naming the file", async () => {
      const q = join(dir, "q8.bin");
      await quantizeModel(modelPath, q, "q8_0");
      await assert.rejects(quantizeModel(q, join(dir, "again.bin"), "q4_0"), /already quantized/);
    });
  },
);
