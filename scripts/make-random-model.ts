// Writes a tiny random-weights whisper ggml model (real vocabulary and file format) for fast tests:
//   node --import tsx scripts/make-random-model.ts <out.bin> [nState] [nLayers]
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { makeRandomGgmlModel } from "../src/models/random-model.js";

const [out, nState, nLayers] = process.argv.slice(2);
if (!out) {
  console.error("usage: make-random-model.ts <out.bin> [nState=64] [nLayers=1]");
  process.exit(2);
}
const assets = process.env.KIKITORI_ASSETS ?? path.resolve(import.meta.dirname, "../testdata/assets");
const work = await mkdtemp(path.join(os.tmpdir(), "kikitori-random-model-"));
try {
  const r = await makeRandomGgmlModel(out, work, {
    tiktokenFile: path.join(assets, "gpt2.tiktoken"),
    nState: nState ? Number(nState) : undefined,
    nLayers: nLayers ? Number(nLayers) : undefined,
  });
  console.log(`${r.file}: ${r.bytes} bytes, ${r.tensors} tensors`);
} finally {
  await rm(work, { recursive: true, force: true });
}
