// CTranslate2 (faster-whisper) model directory → whisper.cpp ggml (ct2-to-ggml.md §4).
import { existsSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { FileReader } from "../file-reader.js";
import {
  GGML_F16,
  GGML_F32,
  GgmlWriter,
  tensorRecordBytes,
  type GgmlHparams,
  type GgmlType,
} from "../ggml.js";
import { melFilterbank } from "../mel.js";
import { writeViaPartial } from "../partial.js";
import { bfloat16ToFloat, floatToHalf, halfToFloat } from "../fp16.js";
import { readCt2Vocabulary, tokenToBytes } from "../vocab.js";
import { alignmentPreset, checkSpecialTokens } from "../whisper-layout.js";
import { openCt2Model, readScalar, resolveVariable, type Ct2Model, type Ct2Variable } from "./ct2-reader.js";
import type { ImportProgress, ImportResult, ModelImporter } from "./types.js";

/** Entries written to the ggml vocabulary block: the BPE tokens plus id 50256 (§3.3). */
const GGML_VOCAB_ENTRIES = 50257;
const CHUNK_BYTES = 4 << 20;

interface Ct2Dir {
  dir: string;
  modelBin: string;
  /** config.json: lang_ids, alignment_heads, suppress_ids (ct2-to-ggml.md §1.9). */
  config: { lang_ids?: unknown; alignment_heads?: unknown };
}

async function locate(src: string): Promise<Ct2Dir> {
  const st = await stat(src).catch(() => undefined);
  if (!st) throw new Error(`${src}: no such file or directory`);
  const dir = st.isDirectory() ? src : path.dirname(src);
  const modelBin = st.isDirectory() ? path.join(dir, "model.bin") : src;
  if (!existsSync(modelBin)) throw new Error(`${dir}: no model.bin (not a CTranslate2 model directory)`);
  const config = path.join(dir, "config.json");
  if (!existsSync(config)) throw new Error(`${dir}: no config.json (not a CTranslate2 model directory)`);
  try {
    return { dir, modelBin, config: JSON.parse(await readFile(config, "utf8")) as Ct2Dir["config"] };
  } catch (err) {
    throw new Error(`${config}: invalid JSON (${(err as Error).message})`, { cause: err });
  }
}

/** One ggml tensor: rows [rowStart, rowEnd) of a CT2 variable (dim 0), written as `type`. */
interface OutTensor {
  name: string;
  type: GgmlType;
  /** ggml dims, innermost first. */
  ne: number[];
  src: Ct2Variable;
  rowStart: number;
  rowEnd: number;
}

class Planner {
  readonly out: OutTensor[] = [];
  /** Fused key-bias blocks that whisper.cpp has no tensor for; they must be zero. */
  readonly dropped: Omit<OutTensor, "name" | "type" | "ne">[] = [];

  constructor(private readonly model: Ct2Model) {}

  need(name: string): Ct2Variable {
    const v = resolveVariable(this.model, name);
    if (!v) throw new Error(`${this.model.file}: missing variable ${name}`);
    return v;
  }

  expectShape(v: Ct2Variable, shape: number[]): void {
    if (v.shape.join() !== shape.join()) {
      throw new Error(`${this.model.file}: variable ${v.name} has shape [${v.shape}], expected [${shape}]`);
    }
  }

  /** `part` of `parts` equal row blocks of `ct2Name` (whole variable when parts = 1). */
  add(
    name: string,
    ct2Name: string,
    type: GgmlType,
    shape: number[],
    part = 0,
    parts = 1,
    ne?: number[],
  ): void {
    const src = this.need(ct2Name);
    const fused = [shape[0]! * parts, ...shape.slice(1)];
    this.expectShape(src, fused);
    const rows = shape[0]!;
    this.out.push({
      name,
      type,
      ne: ne ?? [...shape].reverse(),
      src,
      rowStart: part * rows,
      rowEnd: (part + 1) * rows,
    });
  }

  drop(ct2Name: string, rows: number, part: number): void {
    this.dropped.push({ src: this.need(ct2Name), rowStart: part * rows, rowEnd: (part + 1) * rows });
  }
}

function layerCount(model: Ct2Model, side: "encoder" | "decoder"): number {
  const re = new RegExp(`^${side}/layer_(\\d+)/`);
  const ids = new Set<number>();
  for (const name of model.variables.keys()) {
    const m = re.exec(name);
    if (m) ids.add(Number(m[1]));
  }
  for (let i = 0; i < ids.size; i++) {
    if (!ids.has(i)) throw new Error(`${model.file}: ${side} layers are not numbered 0..${ids.size - 1}`);
  }
  return ids.size;
}

async function heads(model: Ct2Model, side: string): Promise<number> {
  const v = model.variables.get(`${side}/num_heads`);
  return v ? readScalar(model, v) : 8; // CTranslate2's default when the attribute is absent
}

async function deriveHparams(p: Planner, model: Ct2Model): Promise<GgmlHparams> {
  const conv1 = p.need("encoder/conv1/weight");
  const encPos = p.need("encoder/position_encodings/encodings");
  const emb = p.need("decoder/embeddings/weight");
  const decPos = p.need("decoder/position_encodings/encodings");
  for (const [v, rank] of [
    [conv1, 3],
    [encPos, 2],
    [emb, 2],
    [decPos, 2],
  ] as const) {
    if (v.shape.length !== rank) {
      throw new Error(
        `${model.file}: variable ${v.name} has shape [${v.shape}], expected ${rank} dimensions`,
      );
    }
  }
  const h: GgmlHparams = {
    nVocab: emb.shape[0]!,
    nAudioCtx: encPos.shape[0]!,
    nAudioState: encPos.shape[1]!,
    nAudioHead: await heads(model, "encoder"),
    nAudioLayer: layerCount(model, "encoder"),
    nTextCtx: decPos.shape[0]!,
    nTextState: emb.shape[1]!,
    nTextHead: await heads(model, "decoder"),
    nTextLayer: layerCount(model, "decoder"),
    nMels: conv1.shape[1]!,
    ftype: 1,
  };
  if (h.nTextState !== h.nAudioState) {
    throw new Error(
      `${model.file}: decoder width ${h.nTextState} differs from encoder width ${h.nAudioState}`,
    );
  }
  return h;
}

function plan(p: Planner, h: GgmlHparams): void {
  const S = h.nAudioState;
  const F16 = GGML_F16;
  const F32 = GGML_F32;
  const attention = (ggml: string, ct2: string, cross: boolean) => {
    // Self-attention fuses Q,K,V in linear_0; cross-attention has Q in linear_0 and K,V in linear_1 (§2.3).
    const qkv = `${ct2}/linear_0`;
    const kv = cross ? `${ct2}/linear_1` : qkv;
    const kvParts = cross ? 2 : 3;
    const k = cross ? 0 : 1;
    const out = cross ? `${ct2}/linear_2` : `${ct2}/linear_1`;
    p.add(`${ggml}.query.weight`, `${qkv}/weight`, F16, [S, S], 0, cross ? 1 : 3);
    p.add(`${ggml}.query.bias`, `${qkv}/bias`, F32, [S], 0, cross ? 1 : 3);
    p.add(`${ggml}.key.weight`, `${kv}/weight`, F16, [S, S], k, kvParts);
    p.drop(`${kv}/bias`, S, k);
    p.add(`${ggml}.value.weight`, `${kv}/weight`, F16, [S, S], k + 1, kvParts);
    p.add(`${ggml}.value.bias`, `${kv}/bias`, F32, [S], k + 1, kvParts);
    p.add(`${ggml}.out.weight`, `${out}/weight`, F16, [S, S]);
    p.add(`${ggml}.out.bias`, `${out}/bias`, F32, [S]);
  };
  const norm = (ggml: string, ct2: string) => {
    p.add(`${ggml}.weight`, `${ct2}/gamma`, F32, [S]);
    p.add(`${ggml}.bias`, `${ct2}/beta`, F32, [S]);
  };
  const mlp = (ggml: string, ct2: string) => {
    const ff = p.need(`${ct2}/linear_0/weight`).shape[0]!;
    p.add(`${ggml}.mlp.0.weight`, `${ct2}/linear_0/weight`, F16, [ff, S]);
    p.add(`${ggml}.mlp.0.bias`, `${ct2}/linear_0/bias`, F32, [ff]);
    p.add(`${ggml}.mlp.2.weight`, `${ct2}/linear_1/weight`, F16, [S, ff]);
    p.add(`${ggml}.mlp.2.bias`, `${ct2}/linear_1/bias`, F32, [S]);
    norm(`${ggml}.mlp_ln`, `${ct2}/layer_norm`);
  };
  // Records follow OpenAI's state_dict order (what convert-pt-to-ggml.py writes); whisper.cpp accepts any order.
  p.add("encoder.positional_embedding", "encoder/position_encodings/encodings", F32, [h.nAudioCtx, S]);
  p.add("encoder.conv1.weight", "encoder/conv1/weight", F16, [S, h.nMels, 3]);
  p.add("encoder.conv1.bias", "encoder/conv1/bias", F32, [S], 0, 1, [1, S]);
  p.add("encoder.conv2.weight", "encoder/conv2/weight", F16, [S, S, 3]);
  p.add("encoder.conv2.bias", "encoder/conv2/bias", F32, [S], 0, 1, [1, S]);
  for (let i = 0; i < h.nAudioLayer; i++) {
    const g = `encoder.blocks.${i}`;
    const c = `encoder/layer_${i}`;
    attention(`${g}.attn`, `${c}/self_attention`, false);
    norm(`${g}.attn_ln`, `${c}/self_attention/layer_norm`);
    mlp(g, `${c}/ffn`);
  }
  norm("encoder.ln_post", "encoder/layer_norm");
  p.add("decoder.positional_embedding", "decoder/position_encodings/encodings", F32, [h.nTextCtx, S]);
  p.add("decoder.token_embedding.weight", "decoder/embeddings/weight", F16, [h.nVocab, S]);
  for (let i = 0; i < h.nTextLayer; i++) {
    const g = `decoder.blocks.${i}`;
    const c = `decoder/layer_${i}`;
    attention(`${g}.attn`, `${c}/self_attention`, false);
    norm(`${g}.attn_ln`, `${c}/self_attention/layer_norm`);
    attention(`${g}.cross_attn`, `${c}/attention`, true);
    norm(`${g}.cross_attn_ln`, `${c}/attention/layer_norm`);
    mlp(g, `${c}/ffn`);
  }
  norm("decoder.ln", "decoder/layer_norm");
}

let halfTable: Float32Array | undefined;
function halfToFloatTable(): Float32Array {
  halfTable ??= Float32Array.from({ length: 65536 }, (_, h) => halfToFloat(h));
  return halfTable;
}

/** Reads `count` float-typed elements of `v` starting at element `first`. */
async function readFloats(
  model: Ct2Model,
  v: Ct2Variable,
  first: number,
  count: number,
): Promise<Float32Array> {
  const raw = await model.reader.read(v.offset + first * v.itemBytes, count * v.itemBytes, v.name);
  const out = new Float32Array(count);
  if (v.dtype === "float32") for (let i = 0; i < count; i++) out[i] = raw.readFloatLE(4 * i);
  else if (v.dtype === "float16") {
    const t = halfToFloatTable();
    for (let i = 0; i < count; i++) out[i] = t[raw.readUInt16LE(2 * i)]!;
  } else if (v.dtype === "bfloat16")
    for (let i = 0; i < count; i++) out[i] = bfloat16ToFloat(raw.readUInt16LE(2 * i));
  else throw new Error(`${model.file}: variable ${v.name} has dtype ${v.dtype}, expected a float type`);
  return out;
}

/** Values of rows [r0, r1) as float32, dequantizing int8/int16 weights with their `_scale` (§6.7). */
async function readRows(model: Ct2Model, v: Ct2Variable, r0: number, r1: number): Promise<Float32Array> {
  const rowElems = v.shape.slice(1).reduce((a, b) => a * b, 1);
  if (v.dtype !== "int8" && v.dtype !== "int16")
    return readFloats(model, v, r0 * rowElems, (r1 - r0) * rowElems);
  const scaleVar = model.variables.get(`${v.name}_scale`);
  if (!scaleVar)
    throw new Error(`${model.file}: ${v.dtype} variable ${v.name} has no ${v.name}_scale to dequantize it`);
  const perRow = scaleVar.shape.length > 0;
  const scales = await readFloats(model, scaleVar, perRow ? r0 : 0, perRow ? r1 - r0 : 1);
  const raw = await model.reader.read(
    v.offset + r0 * rowElems * v.itemBytes,
    (r1 - r0) * rowElems * v.itemBytes,
    v.name,
  );
  const out = new Float32Array((r1 - r0) * rowElems);
  for (let r = 0; r < r1 - r0; r++) {
    // CTranslate2 dequantizes as q * (1 / scale) in float32.
    const inv = Math.fround(1 / scales[perRow ? r : 0]!);
    for (let k = 0; k < rowElems; k++) {
      const i = r * rowElems + k;
      const q = v.dtype === "int8" ? raw.readInt8(i) : raw.readInt16LE(2 * i);
      out[i] = Math.fround(q * inv);
    }
  }
  return out;
}

/** Tensor data for rows [rowStart, rowEnd) in the output type, in chunks of about CHUNK_BYTES. */
async function* tensorData(model: Ct2Model, t: Omit<OutTensor, "name" | "ne">): AsyncGenerator<Uint8Array> {
  const v = t.src;
  const rowElems = v.shape.slice(1).reduce((a, b) => a * b, 1);
  const rowBytes = rowElems * v.itemBytes;
  const step = Math.max(1, Math.floor(CHUNK_BYTES / rowBytes));
  const copy =
    (v.dtype === "float16" && t.type === GGML_F16) || (v.dtype === "float32" && t.type === GGML_F32);
  for (let r = t.rowStart; r < t.rowEnd; r += step) {
    const end = Math.min(t.rowEnd, r + step);
    if (copy) {
      yield await model.reader.read(v.offset + r * rowBytes, (end - r) * rowBytes, v.name);
      continue;
    }
    const values = await readRows(model, v, r, end);
    if (t.type === GGML_F32) {
      yield new Uint8Array(values.buffer);
    } else {
      const half = new Uint16Array(values.length);
      for (let i = 0; i < values.length; i++) half[i] = floatToHalf(values[i]!);
      yield new Uint8Array(half.buffer);
    }
  }
}

async function checkDroppedZero(model: Ct2Model, p: Planner): Promise<void> {
  for (const d of p.dropped) {
    const values = await readRows(model, d.src, d.rowStart, d.rowEnd);
    if (values.some((x) => x !== 0)) {
      throw new Error(
        `${model.file}: key bias block [${d.rowStart}, ${d.rowEnd}) of ${d.src.name} is not zero`,
      );
    }
  }
}

/** The tied output projection must be the token embedding: ggml has no separate head (§6.2). */
async function checkProjection(model: Ct2Model): Promise<void> {
  const name = "decoder/projection/weight";
  const emb = resolveVariable(model, "decoder/embeddings/weight");
  const proj = resolveVariable(model, name);
  if (!proj || proj === emb) return;
  if (!emb || proj.bytes !== emb.bytes || proj.dtype !== emb.dtype) {
    throw new Error(
      `${model.file}: ${name} differs from the token embedding; ggml cannot store a separate head`,
    );
  }
  for (let off = 0; off < proj.bytes; off += CHUNK_BYTES) {
    const n = Math.min(CHUNK_BYTES, proj.bytes - off);
    const a = await model.reader.read(proj.offset + off, n, proj.name);
    const b = await model.reader.read(emb.offset + off, n, emb.name);
    if (!a.equals(b)) throw new Error(`${model.file}: ${name} differs from the token embedding`);
  }
}

function vocabularyEntries(file: string, tokens: string[], nVocab: number): Uint8Array[] {
  const multilingual = nVocab >= 51865;
  const eot = multilingual ? 50257 : 50256;
  if (tokens.length < GGML_VOCAB_ENTRIES + (multilingual ? 1 : 0)) {
    throw new Error(
      `${file}: ${tokens.length} tokens, a Whisper vocabulary has at least ${GGML_VOCAB_ENTRIES + 1}`,
    );
  }
  if (tokens[eot] !== "<|endoftext|>" || (multilingual && tokens[50256] !== "")) {
    throw new Error(
      `${file}: token ${eot} is ${JSON.stringify(tokens[eot])}, expected "<|endoftext|>" for a ${multilingual ? "multilingual" : "English-only"} model of ${nVocab} tokens`,
    );
  }
  return tokens.slice(0, GGML_VOCAB_ENTRIES).map((t, id) => {
    try {
      return tokenToBytes(t);
    } catch (err) {
      throw new Error(`${file}: token ${id}: ${(err as Error).message}`, { cause: err });
    }
  });
}

async function importCt2(
  src: string,
  outFile: string,
  onProgress?: (p: ImportProgress) => void,
): Promise<ImportResult> {
  const { dir, modelBin, config } = await locate(src);
  const model = await openCt2Model(modelBin);
  try {
    const p = new Planner(model);
    const h = await deriveHparams(p, model);
    plan(p, h);
    const vocab = await readCt2Vocabulary(dir);
    const tokens = vocabularyEntries(vocab.file, vocab.tokens, h.nVocab);
    checkSpecialTokens(vocab.file, vocab.tokens, h.nVocab, config.lang_ids);
    const where = path.join(dir, "config.json");
    const alignment =
      config.alignment_heads === undefined
        ? undefined
        : {
            heads: config.alignment_heads as [number, number][],
            preset: alignmentPreset(where, config.alignment_heads, h),
          };
    await checkDroppedZero(model, p);
    await checkProjection(model);
    const mel = melFilterbank(h.nMels);
    const bytesTotal =
      48 +
      8 +
      mel.data.byteLength +
      4 +
      tokens.reduce((a, t) => a + 4 + t.length, 0) +
      p.out.reduce((a, t) => a + tensorRecordBytes(t.name, t.type, t.ne), 0);
    return await writeViaPartial(outFile, async (tmp) => {
      const w = await GgmlWriter.create(tmp);
      try {
        await w.header(h);
        await w.melFilters(mel.nMels, mel.nBins, mel.data);
        await w.vocabulary(tokens);
        for (const t of p.out) {
          await w.tensorHeader(t.name, t.type, t.ne);
          for await (const chunk of tensorData(model, t)) {
            await w.write(chunk);
            onProgress?.({ bytesDone: w.bytesWritten, bytesTotal });
          }
        }
      } catch (err) {
        await w.abort();
        throw err;
      }
      const { bytes, sha256 } = await w.close();
      if (bytes !== bytesTotal) throw new Error(`${tmp}: wrote ${bytes} bytes, expected ${bytesTotal}`);
      return {
        format: "ct2",
        source: dir,
        file: outFile,
        bytes,
        sha256,
        tensors: p.out.length,
        hparams: h,
        ...(alignment ? { alignment } : {}),
      };
    });
  } finally {
    await model.reader.close();
  }
}

/** A directory holding model.bin, or a model.bin itself, whose header names a Whisper CTranslate2 spec. */
async function detectCt2(src: string): Promise<boolean> {
  const st = await stat(src).catch(() => undefined);
  if (!st) return false;
  const modelBin = st.isDirectory() ? path.join(src, "model.bin") : src;
  if (!existsSync(modelBin)) return false;
  const r = await FileReader.open(modelBin);
  try {
    const head = await r.readUpTo(0, 18);
    const version = head.length >= 4 ? head.readUInt32LE(0) : 0;
    return version >= 4 && version <= 6 && head.toString("latin1", 6, 17) === "WhisperSpec";
  } finally {
    await r.close();
  }
}

export const ct2Importer: ModelImporter = {
  name: "ct2",
  description: "CTranslate2 / faster-whisper model directory (model.bin, config.json, vocabulary.*)",
  detect: detectCt2,
  import: importCt2,
};
