// Tiny random-weights Whisper models for fast tests: a CTranslate2 model directory laid out
// exactly like faster-whisper's (real GPT-2 vocabulary, tiny widths), and its ggml conversion.
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { floatToHalf } from "./fp16.js";
import { ct2Importer } from "./import/ct2.js";
import type { ImportResult } from "./import/types.js";
import { bytesToToken } from "./vocab.js";
import { specialTokens } from "./whisper-layout.js";

export interface RandomModelOptions {
  /** gpt2.tiktoken (openai/whisper asset) supplying the 50256 BPE tokens. */
  tiktokenFile: string;
  nState?: number;
  nHeads?: number;
  nLayers?: number;
  nMels?: number;
  nAudioCtx?: number;
  nTextCtx?: number;
  /** Storage of the weights, as CTranslate2's --quantization would produce. */
  quantization?: "float16" | "float32" | "int8";
  seed?: number;
}

const N_VOCAB_EN = 51864;
const DTYPE_ID = { float32: 0, int8: 1, int16: 2, float16: 4 } as const;

interface Var {
  name: string;
  shape: number[];
  dtype: keyof typeof DTYPE_ID;
  data: Buffer;
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function ct2String(s: string): Buffer {
  const b = Buffer.alloc(2 + s.length + 1);
  b.writeUInt16LE(s.length + 1, 0);
  b.write(s, 2, "latin1");
  return b;
}

/** Tokens 0..50255 from gpt2.tiktoken, then the English-only special tokens up to n_vocab. */
async function englishVocabulary(tiktokenFile: string): Promise<string[]> {
  const tokens: string[] = [];
  for (const line of (await readFile(tiktokenFile, "utf8")).split("\n")) {
    if (!line) continue;
    const [b64, rank] = line.split(" ");
    tokens[Number(rank)] = bytesToToken(Buffer.from(b64!, "base64"));
  }
  if (tokens.length !== 50256)
    throw new Error(`${tiktokenFile}: expected 50256 GPT-2 tokens, found ${tokens.length}`);
  // The special tokens where an English-only Whisper has them (whisper.cpp relies on their ids).
  const special = specialTokens(N_VOCAB_EN);
  tokens.push("<|endoftext|>", "<|startoftranscript|>", ...special.languages.map((l) => `<|${l.code}|>`));
  tokens.push("<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nocaptions|>");
  tokens.push("<|notimestamps|>");
  while (tokens.length < N_VOCAB_EN)
    tokens.push(`<|${((tokens.length - special.timestampBegin) * 0.02).toFixed(2)}|>`);
  return tokens;
}

/** Writes model.bin, config.json and vocabulary.txt of a random English-only Whisper into `dir`. */
export async function writeRandomCt2Model(dir: string, opts: RandomModelOptions): Promise<void> {
  const S = opts.nState ?? 64;
  const L = opts.nLayers ?? 1;
  const M = opts.nMels ?? 80;
  const A = opts.nAudioCtx ?? 1500;
  const T = opts.nTextCtx ?? 448;
  const q = opts.quantization ?? "float16";
  const rand = mulberry32(opts.seed ?? 1);
  const vars: Var[] = [];
  const floatDtype = q === "int8" ? "float32" : q;

  const floats = (values: Float32Array): Buffer => {
    if (floatDtype === "float32") return Buffer.from(values.buffer);
    return Buffer.from(Uint16Array.from(values, floatToHalf).buffer);
  };
  const tensor = (name: string, shape: number[], fill: (i: number) => number, quantize = false) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const values = Float32Array.from({ length: n }, (_, i) => fill(i));
    if (!(quantize && q === "int8")) {
      vars.push({ name, shape, dtype: floatDtype, data: floats(values) });
      return;
    }
    // Per-row symmetric int8, as CTranslate2 stores it: w ≈ q / scale.
    const rows = shape[0]!;
    const cols = n / rows;
    const qs = Buffer.alloc(n);
    const scales = new Float32Array(rows);
    for (let r = 0; r < rows; r++) {
      let max = 0;
      for (let c = 0; c < cols; c++) max = Math.max(max, Math.abs(values[r * cols + c]!));
      const scale = max > 0 ? 127 / max : 1;
      scales[r] = scale;
      for (let c = 0; c < cols; c++) qs.writeInt8(Math.round(values[r * cols + c]! * scale), r * cols + c);
    }
    vars.push({ name, shape, dtype: "int8", data: qs });
    vars.push({ name: `${name}_scale`, shape: [rows], dtype: "float32", data: Buffer.from(scales.buffer) });
  };
  const noise = () => (rand() - 0.5) * 0.04;
  const weight = (name: string, shape: number[]) => tensor(name, shape, noise, true);
  const bias = (name: string, n: number, zeroFrom = -1, zeroTo = -1) =>
    tensor(name, [n], (i) => (i >= zeroFrom && i < zeroTo ? 0 : noise()));
  const norm = (prefix: string) => {
    tensor(`${prefix}/gamma`, [S], () => 1);
    tensor(`${prefix}/beta`, [S], () => 0);
  };
  const scalar = (name: string, dtype: "int8" | "int16", value: number) => {
    const data = Buffer.alloc(dtype === "int8" ? 1 : 2);
    if (dtype === "int8") data.writeInt8(value);
    else data.writeInt16LE(value);
    vars.push({ name, shape: [], dtype, data });
  };
  const ffn = (p: string) => {
    norm(`${p}/ffn/layer_norm`);
    weight(`${p}/ffn/linear_0/weight`, [4 * S, S]);
    bias(`${p}/ffn/linear_0/bias`, 4 * S);
    weight(`${p}/ffn/linear_1/weight`, [S, 4 * S]);
    bias(`${p}/ffn/linear_1/bias`, S);
  };
  const selfAttention = (p: string) => {
    norm(`${p}/self_attention/layer_norm`);
    weight(`${p}/self_attention/linear_0/weight`, [3 * S, S]);
    bias(`${p}/self_attention/linear_0/bias`, 3 * S, S, 2 * S);
    weight(`${p}/self_attention/linear_1/weight`, [S, S]);
    bias(`${p}/self_attention/linear_1/bias`, S);
  };

  weight("encoder/conv1/weight", [S, M, 3]);
  bias("encoder/conv1/bias", S);
  weight("encoder/conv2/weight", [S, S, 3]);
  bias("encoder/conv2/bias", S);
  // OpenAI's sinusoids: first half sin, second half cos.
  const inc = Math.log(10000) / (S / 2 - 1);
  tensor("encoder/position_encodings/encodings", [A, S], (i) => {
    const pos = Math.floor(i / S);
    const k = i % S;
    const t = pos * Math.exp(-inc * (k % (S / 2)));
    return k < S / 2 ? Math.sin(t) : Math.cos(t);
  });
  for (let l = 0; l < L; l++) {
    selfAttention(`encoder/layer_${l}`);
    ffn(`encoder/layer_${l}`);
  }
  norm("encoder/layer_norm");
  scalar("encoder/num_heads", "int16", opts.nHeads ?? 2);
  weight("decoder/embeddings/weight", [N_VOCAB_EN, S]);
  tensor("decoder/position_encodings/encodings", [T, S], noise);
  for (let l = 0; l < L; l++) {
    const p = `decoder/layer_${l}`;
    selfAttention(p);
    norm(`${p}/attention/layer_norm`);
    weight(`${p}/attention/linear_0/weight`, [S, S]);
    bias(`${p}/attention/linear_0/bias`, S);
    weight(`${p}/attention/linear_1/weight`, [2 * S, S]);
    bias(`${p}/attention/linear_1/bias`, 2 * S, 0, S);
    weight(`${p}/attention/linear_2/weight`, [S, S]);
    bias(`${p}/attention/linear_2/bias`, S);
    ffn(p);
  }
  norm("decoder/layer_norm");
  scalar("decoder/num_heads", "int16", opts.nHeads ?? 2);
  scalar("decoder/activation", "int8", 3);
  scalar("decoder/pre_norm", "int8", 1);
  scalar("decoder/scale_embeddings", "int8", 0);

  vars.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const header = Buffer.alloc(4);
  header.writeUInt32LE(6);
  const parts: Buffer[] = [header, ct2String("WhisperSpec"), u32(3), u32(vars.length)];
  for (const v of vars) {
    const meta = Buffer.alloc(1 + 4 * v.shape.length + 5);
    meta.writeUInt8(v.shape.length, 0);
    v.shape.forEach((d, k) => meta.writeUInt32LE(d, 1 + 4 * k));
    meta.writeUInt8(DTYPE_ID[v.dtype], 1 + 4 * v.shape.length);
    meta.writeUInt32LE(v.data.length, 2 + 4 * v.shape.length);
    parts.push(ct2String(v.name), meta, v.data);
  }
  parts.push(u32(1), ct2String("decoder/projection/weight"), ct2String("decoder/embeddings/weight"));
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, "model.bin"), Buffer.concat(parts));
  await writeFile(
    path.join(dir, "config.json"),
    JSON.stringify(
      {
        alignment_heads: [[0, 0]],
        lang_ids: specialTokens(N_VOCAB_EN).languages.map((l) => l.id),
        suppress_ids: [],
        suppress_ids_begin: [],
      },
      null,
      2,
    ),
  );
  await writeFile(
    path.join(dir, "vocabulary.txt"),
    (await englishVocabulary(opts.tiktokenFile)).join("\n") + "\n",
  );
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

/** A random tiny ggml model at `outFile` (via a CTranslate2 directory `workDir`), e.g. for server tests. */
export async function makeRandomGgmlModel(
  outFile: string,
  workDir: string,
  opts: RandomModelOptions,
): Promise<ImportResult> {
  await writeRandomCt2Model(workDir, opts);
  return ct2Importer.import(workDir, outFile);
}
