import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { GGML_F16, GGML_F32, readGgmlInfo } from "../../src/models/ggml.js";
import { ct2Importer } from "../../src/models/import/ct2.js";
import { openCt2Model } from "../../src/models/import/ct2-reader.js";
import { findImporter } from "../../src/models/import/index.js";
import { writeRandomCt2Model, type RandomModelOptions } from "../../src/models/random-model.js";
import { halfToFloat } from "../../src/models/fp16.js";
import { assetsDir } from "../helpers/fixtures.js";
import { loadInWhisper } from "./helpers/whisper.js";

const tiktokenFile = path.join(assetsDir, "gpt2.tiktoken");
let tmp: string;

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "kikitori-ct2-test-"));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function randomModel(name: string, opts: Partial<RandomModelOptions> = {}): Promise<string> {
  const dir = path.join(tmp, name);
  await writeRandomCt2Model(dir, { tiktokenFile, ...opts });
  return dir;
}

/** Imports and returns the error; checks that neither the output nor a partial file is left. */
async function importError(src: string): Promise<Error> {
  const out = path.join(tmp, `out-${path.basename(src)}.bin`);
  const err = await ct2Importer.import(src, out).then(
    () => assert.fail("import should fail"),
    (e: Error) => e,
  );
  assert.ok(!existsSync(out) && !existsSync(`${out}.partial`), "no output left behind");
  return err;
}

test(
  "a random float16 CT2 model converts to a ggml file whisper.cpp loads",
  { timeout: 120_000 },
  async () => {
    const dir = await randomModel("f16");
    assert.equal((await findImporter(dir)).name, "ct2");
    const model = await openCt2Model(path.join(dir, "model.bin"));
    assert.equal(model.specName, "WhisperSpec");
    assert.deepEqual([...model.aliases], [["decoder/projection/weight", "decoder/embeddings/weight"]]);
    await model.reader.close();

    const out = path.join(tmp, "f16.bin");
    let last = 0;
    const r = await ct2Importer.import(dir, out, (p) => (last = p.bytesDone / p.bytesTotal));
    assert.equal(last, 1);
    const info = await readGgmlInfo(out);
    assert.equal(info.fileBytes, r.bytes);
    assert.equal(info.tensors.length, 50); // 5 + 15 + 2 encoder, 2 + 24 + 2 decoder
    assert.deepEqual(Object.values(info.hparams), [51864, 1500, 64, 2, 1, 448, 64, 2, 1, 80, 1]);
    assert.equal(info.vocabCount, 50257);
    const byName = new Map(info.tensors.map((t) => [t.name, t]));
    assert.deepEqual(byName.get("encoder.conv2.bias")?.ne, [1, 64]);
    assert.deepEqual(byName.get("encoder.blocks.0.attn.key.weight")?.ne, [64, 64]);
    assert.equal(byName.get("encoder.blocks.0.attn.key.weight")?.type, GGML_F16);
    assert.equal(byName.get("decoder.blocks.0.cross_attn.value.bias")?.type, GGML_F32);
    assert.ok(![...byName.keys()].some((n) => n.includes("key.bias")));
    assert.deepEqual(await readdir(tmp).then((f) => f.filter((n) => n.endsWith(".partial"))), []);

    const { log } = await loadInWhisper(out);
    assert.match(log, /n_audio_state\s*=\s*64/);
    assert.doesNotMatch(log, /unknown tensor|wrong shape|wrong size/);
  },
);

test("float32 and int8 CT2 models convert to the same F16 weights (int8 within its quantization step)", async () => {
  const files: Record<string, string> = {};
  for (const q of ["float16", "float32", "int8"] as const) {
    files[q] = path.join(tmp, `q-${q}.bin`);
    await ct2Importer.import(await randomModel(`q-${q}`, { quantization: q, seed: 7 }), files[q]);
  }
  const infos = await Promise.all(Object.values(files).map((f) => readGgmlInfo(f)));
  const [f16, f32, i8] = await Promise.all(Object.values(files).map((f) => readFile(f)));
  for (const info of infos.slice(1))
    assert.deepEqual(
      info.tensors.map((t) => [t.name, t.ne, t.type]),
      infos[0]!.tensors.map((t) => [t.name, t.ne, t.type]),
    );
  for (const t of infos[0]!.tensors.filter((x) => x.type === GGML_F16)) {
    const a = f16!.subarray(t.offset, t.offset + t.bytes);
    assert.ok(
      a.equals(f32!.subarray(t.offset, t.offset + t.bytes)),
      `${t.name}: float32 source rounds like CTranslate2's float16`,
    );
    const q = i8!.subarray(t.offset, t.offset + t.bytes);
    for (let i = 0; i < t.bytes; i += 2) {
      const d = Math.abs(halfToFloat(a.readUInt16LE(i)) - halfToFloat(q.readUInt16LE(i)));
      assert.ok(d < 2e-4, `${t.name}[${i / 2}] int8 dequantization off by ${d}`);
    }
  }
});

test("a truncated model.bin is rejected naming the file and the variable", async () => {
  const dir = await randomModel("truncated");
  const bin = path.join(dir, "model.bin");
  const full = await readFile(bin);
  await writeFile(bin, full.subarray(0, Math.floor(full.length / 2)));
  const err = await importError(dir);
  assert.match(
    err.message,
    new RegExp(`^${bin.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}: truncated: variable \\S+ ends at byte`),
  );
});

test("a PNG given as model.bin is rejected as not a CTranslate2 model", async () => {
  const dir = await randomModel("png");
  const bin = path.join(dir, "model.bin");
  await writeFile(
    bin,
    Buffer.concat([Buffer.from("89504e470d0a1a0a0000000d49484452", "hex"), Buffer.alloc(64)]),
  );
  assert.equal(await ct2Importer.detect(dir), false);
  const err = await importError(dir);
  assert.equal(err.message, `${bin}: not a CTranslate2 model.bin (binary version 1196314761, expected 4..6)`);
});

async function patchDtype(dir: string, variable: string, typeId: number): Promise<void> {
  const bin = path.join(dir, "model.bin");
  const model = await openCt2Model(bin);
  const v = model.variables.get(variable)!;
  await model.reader.close();
  const buf = await readFile(bin);
  buf.writeUInt8(typeId, v.offset - 5); // dtype byte precedes the uint32 byte count
  await writeFile(bin, buf);
}

test("a float tensor stored with an integer dtype is rejected naming the variable", async () => {
  const dir = await randomModel("int32", { quantization: "float32" });
  await patchDtype(dir, "encoder/layer_norm/gamma", 3); // int32: same item size as float32
  const err = await importError(dir);
  assert.equal(
    err.message,
    `${path.join(dir, "model.bin")}: variable encoder/layer_norm/gamma has dtype int32, expected a float type`,
  );
});

test("an unknown dtype id is rejected naming the variable", async () => {
  const dir = await randomModel("dtype9");
  await patchDtype(dir, "decoder/layer_norm/beta", 9);
  const err = await importError(dir);
  assert.equal(
    err.message,
    `${path.join(dir, "model.bin")}: variable decoder/layer_norm/beta has unknown dtype id 9`,
  );
});

test("a directory without config.json is rejected", async () => {
  const dir = await randomModel("noconfig");
  await rm(path.join(dir, "config.json"));
  const err = await importError(dir);
  assert.equal(err.message, `${dir}: no config.json (not a CTranslate2 model directory)`);
});

test("a directory without a vocabulary is rejected", async () => {
  const dir = await randomModel("novocab");
  await rm(path.join(dir, "vocabulary.txt"));
  const err = await importError(dir);
  assert.equal(err.message, `${dir}: no vocabulary.json or vocabulary.txt`);
});

test("a non-zero key bias is rejected (whisper.cpp has no key bias)", async () => {
  const dir = await randomModel("keybias", { quantization: "float32" });
  const bin = path.join(dir, "model.bin");
  const model = await openCt2Model(bin);
  const v = model.variables.get("encoder/layer_0/self_attention/linear_0/bias")!;
  await model.reader.close();
  const buf = await readFile(bin);
  buf.writeFloatLE(0.5, v.offset + 64 * 4); // first element of the key block
  await writeFile(bin, buf);
  const err = await importError(dir);
  assert.match(
    err.message,
    /key bias block \[64, 128\) of encoder\/layer_0\/self_attention\/linear_0\/bias is not zero/,
  );
});

test("an unrecognised source names the supported formats", async () => {
  const dir = path.join(tmp, "empty");
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, "notes.txt"), "not a model");
  await assert.rejects(findImporter(dir), (e: Error) =>
    e.message.startsWith(`${dir}: not a model format kikitori can import (supported: ct2:`),
  );
});

test("language and task tokens must sit where whisper.cpp looks for them; alignment heads are checked and named", async () => {
  const dir = await randomModel("special");
  const r = await ct2Importer.import(dir, path.join(tmp, "special.bin"));
  assert.deepEqual(r.alignment, { heads: [[0, 0]], preset: "custom" });

  // A vocabulary with two language tokens swapped would make whisper.cpp ask for the wrong language.
  const vocab = path.join(dir, "vocabulary.txt");
  const lines = (await readFile(vocab, "utf8")).split("\n");
  [lines[50258], lines[50259]] = [lines[50259]!, lines[50258]!];
  await writeFile(vocab, lines.join("\n"));
  assert.match(
    (await importError(dir)).message,
    /vocabulary\.txt: token 50258 is "<\|zh\|>", but whisper\.cpp uses id 50258 as <\|en\|> in a model of 51864 tokens/,
  );
  [lines[50258], lines[50259]] = [lines[50259]!, lines[50258]!];
  await writeFile(vocab, lines.join("\n"));

  const config = path.join(dir, "config.json");
  const json = JSON.parse(await readFile(config, "utf8"));
  await writeFile(
    config,
    JSON.stringify({
      ...json,
      alignment_heads: [
        [0, 0],
        [3, 1],
      ],
    }),
  );
  assert.match(
    (await importError(dir)).message,
    /config\.json: alignment head \[3, 1\] is outside the decoder's 1 layers × 2 heads/,
  );
});
