/**
 * Quantized whisper models, written by kikitori itself (no quantized file can be downloaded here):
 * ggml's reference quantizers (ggml-quants.c quantize_row_*_ref) ported to TypeScript, byte for byte,
 * and whisper.cpp's `quantize` tool's rules for which tensors are quantized (examples/quantize): every
 * 2-D F16/F32 tensor except the convolution biases and positional embeddings; the header's ftype becomes
 * GGML_QNT_VERSION × 1000 + the file type.
 *
 * Float arithmetic follows C's single precision step by step (Math.fround after each operation), since
 * the reference quantizers are compiled without fused multiply-add.
 */
import { rename, rm } from "node:fs/promises";
import path from "node:path";
import { floatToHalf, halfToFloat } from "./fp16.js";
import { FileReader } from "./file-reader.js";
import { GGML_F16, GGML_F32, GgmlWriter, readGgmlInfo } from "./ggml.js";
import { writeSidecar, type ModelEntry, type ModelRegistry } from "./registry.js";

/** The types whisper.cpp's quantize tool writes for whisper models: [ggml_type, ggml_ftype, bytes per 32 values]. */
export const QUANT_TYPES = {
  q4_0: { type: 2, ftype: 2, blockBytes: 18 },
  q4_1: { type: 3, ftype: 3, blockBytes: 20 },
  q5_0: { type: 6, ftype: 8, blockBytes: 22 },
  q5_1: { type: 7, ftype: 9, blockBytes: 24 },
  q8_0: { type: 8, ftype: 7, blockBytes: 34 },
} as const;
export type QuantType = keyof typeof QUANT_TYPES;
export const QUANT_TYPE_NAMES = Object.keys(QUANT_TYPES) as QuantType[];

const QK = 32;
const GGML_QNT_VERSION = 2;
const GGML_QNT_VERSION_FACTOR = 1000;
/** Kept as they are, like whisper.cpp's quantize tool does. */
const NOT_QUANTIZED = new Set([
  "encoder.conv1.bias",
  "encoder.conv2.bias",
  "encoder.positional_embedding",
  "decoder.positional_embedding",
]);

export function isQuantType(s: string): s is QuantType {
  return s in QUANT_TYPES;
}

const f = Math.fround;
/** C's (int8_t)/(uint8_t) cast of a float in range: truncation toward zero. */
const trunc = Math.trunc;
/** C's roundf: halves away from zero. */
const roundf = (x: number) => Math.sign(x) * Math.round(Math.abs(x));

/** Quantizes rows of `nPerRow` values (a multiple of 32) into ggml blocks of `type`. */
export function quantizeRows(type: QuantType, data: Float32Array, nPerRow: number): Uint8Array {
  if (nPerRow % QK !== 0 || data.length % nPerRow !== 0)
    throw new RangeError(`rows of ${nPerRow} values do not divide into blocks of ${QK}`);
  const { blockBytes } = QUANT_TYPES[type];
  const out = new Uint8Array((data.length / QK) * blockBytes);
  const view = new DataView(out.buffer);
  for (let b = 0, o = 0; b < data.length; b += QK, o += blockBytes) {
    QUANTIZE_BLOCK[type](data, b, view, o);
  }
  return out;
}

type BlockFn = (x: Float32Array, at: number, out: DataView, o: number) => void;

/** Value of largest magnitude (the first of equal magnitudes), as in q4_0/q5_0. */
function signedAbsMax(x: Float32Array, at: number): number {
  let amax = 0;
  let max = 0;
  for (let j = 0; j < QK; j++) {
    const v = x[at + j]!;
    if (amax < Math.abs(v)) {
      amax = Math.abs(v);
      max = v;
    }
  }
  return max;
}

function minMax(x: Float32Array, at: number): [number, number] {
  let min = Infinity;
  let max = -Infinity;
  for (let j = 0; j < QK; j++) {
    const v = x[at + j]!;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return [min, max];
}

/** Quants of one block, reused (quantizing is single-threaded). */
const q = new Int32Array(QK);

/** The low 4 bits of the 32 quants packed in 16 bytes (j and j+16 share a byte); their 5th bits in a u32 before them. */
function packNibbles(out: DataView, o: number, withHigh: boolean): void {
  let qh = 0;
  for (let j = 0; j < QK / 2; j++) {
    const lo = q[j]!;
    const hi = q[j + QK / 2]!;
    out.setUint8(o + j, (lo & 0x0f) | ((hi & 0x0f) << 4));
    qh |= ((lo & 0x10) >> 4) << j;
    qh |= ((hi & 0x10) >> 4) << (j + QK / 2);
  }
  if (withHigh) out.setUint32(o - 4, qh >>> 0, true);
}

const QUANTIZE_BLOCK: Record<QuantType, BlockFn> = {
  q4_0(x, at, out, o) {
    const d = f(signedAbsMax(x, at) / -8);
    const id = d ? f(1 / d) : 0;
    out.setUint16(o, floatToHalf(d), true);
    for (let j = 0; j < QK; j++) q[j] = Math.min(15, trunc(f(f(x[at + j]! * id) + 8.5)));
    packNibbles(out, o + 2, false);
  },
  q4_1(x, at, out, o) {
    const [min, max] = minMax(x, at);
    const d = f(f(max - min) / 15);
    const id = d ? f(1 / d) : 0;
    out.setUint16(o, floatToHalf(d), true);
    out.setUint16(o + 2, floatToHalf(min), true);
    for (let j = 0; j < QK; j++) q[j] = Math.min(15, trunc(f(f(f(x[at + j]! - min) * id) + 0.5)));
    packNibbles(out, o + 4, false);
  },
  q5_0(x, at, out, o) {
    const d = f(signedAbsMax(x, at) / -16);
    const id = d ? f(1 / d) : 0;
    out.setUint16(o, floatToHalf(d), true);
    for (let j = 0; j < QK; j++) q[j] = Math.min(31, trunc(f(f(x[at + j]! * id) + 16.5)));
    packNibbles(out, o + 6, true);
  },
  q5_1(x, at, out, o) {
    const [min, max] = minMax(x, at);
    const d = f(f(max - min) / 31);
    const id = d ? f(1 / d) : 0;
    out.setUint16(o, floatToHalf(d), true);
    out.setUint16(o + 2, floatToHalf(min), true);
    for (let j = 0; j < QK; j++) q[j] = trunc(f(f(f(x[at + j]! - min) * id) + 0.5)) & 0xff;
    packNibbles(out, o + 8, true);
  },
  q8_0(x, at, out, o) {
    let amax = 0;
    for (let j = 0; j < QK; j++) amax = Math.max(amax, Math.abs(x[at + j]!));
    const d = f(amax / 127);
    const id = d ? f(1 / d) : 0;
    out.setUint16(o, floatToHalf(d), true);
    for (let j = 0; j < QK; j++) out.setInt8(o + 2 + j, roundf(f(x[at + j]! * id)));
  },
};

export interface QuantizeProgress {
  bytesDone: number;
  bytesTotal: number;
}

/**
 * Writes `dest` (via a temporary file, renamed at the end): the F16/F32 whisper model `src` with its
 * weights quantized to `type`. One tensor is in memory at a time.
 */
export async function quantizeModel(
  src: string,
  dest: string,
  type: QuantType,
  onProgress?: (p: QuantizeProgress) => void,
): Promise<{ bytes: number; sha256: string }> {
  const info = await readGgmlInfo(src);
  if (info.hparams.ftype !== 0 && info.hparams.ftype !== 1)
    throw new Error(`${src}: already quantized (ftype ${info.hparams.ftype}); quantize an F16 or F32 model`);
  const reader = await FileReader.open(src);
  const tmp = `${dest}.partial`;
  const w = await GgmlWriter.create(tmp);
  try {
    await w.header({
      ...info.hparams,
      ftype: GGML_QNT_VERSION * GGML_QNT_VERSION_FACTOR + QUANT_TYPES[type].ftype,
    });
    // Mel filters (from their n_mel, n_fft header at byte 48) and vocabulary: copied as they are.
    const tensorsStart = info.tensors[0]
      ? info.tensors[0].offset - recordHeaderBytes(info.tensors[0])
      : info.fileBytes;
    await w.write(await reader.read(48, tensorsStart - 48, "mel filters and vocabulary"));
    for (const t of info.tensors) {
      const data = await reader.read(t.offset, t.bytes, `tensor ${t.name}`);
      const quantize =
        t.ne.length === 2 && !NOT_QUANTIZED.has(t.name) && (t.type === GGML_F16 || t.type === GGML_F32);
      if (quantize && t.ne[0]! % QK !== 0)
        throw new Error(
          `${src}: tensor ${t.name} rows of ${t.ne[0]} values do not divide into blocks of ${QK}`,
        );
      await w.tensorHeader(t.name, quantize ? (QUANT_TYPES[type].type as 0) : (t.type as 0), t.ne);
      await w.write(quantize ? quantizeRows(type, toFloat32(data, t.type), t.ne[0]!) : data);
      onProgress?.({ bytesDone: t.offset + t.bytes, bytesTotal: info.fileBytes });
    }
    const result = await w.close();
    await rename(tmp, dest);
    return result;
  } catch (e) {
    await w.abort();
    await rm(tmp, { force: true });
    throw e;
  } finally {
    await reader.close();
  }
}

function recordHeaderBytes(t: { name: string; ne: number[] }): number {
  return 12 + 4 * t.ne.length + Buffer.byteLength(t.name);
}

let halfTable: Float32Array | undefined;

function toFloat32(data: Buffer, type: number): Float32Array {
  if (type === GGML_F32)
    return new Float32Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) halfTable[h] = halfToFloat(h);
  }
  const halves = new Uint16Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
  const out = new Float32Array(halves.length);
  for (let i = 0; i < out.length; i++) out[i] = halfTable[halves[i]!]!;
  return out;
}

/** The cached model `<name>-<type>`, quantized from the cached F16/F32 model `name` (reused when present). */
export async function quantizeCached(
  registry: ModelRegistry,
  name: string,
  type: QuantType,
  onProgress?: (p: QuantizeProgress) => void,
): Promise<ModelEntry> {
  const source = await registry.get(name);
  if (!source) throw new Error(`model ${name}: not in ${registry.dir} (pull or import it first)`);
  const target = `${name}-${type}`;
  const existing = await registry.get(target);
  if (existing?.sha256) return existing;
  const { sha256 } = await quantizeModel(source.file, registry.path(target), type, onProgress);
  await writeSidecar(registry.path(target), sha256);
  return (await registry.get(target))!;
}

/** "f32", "f16" or the quantization type of a ggml whisper model, from its header's ftype. */
export async function modelTypeName(file: string): Promise<string> {
  const r = await FileReader.open(file);
  try {
    const ftype = (await r.read(44, 4, "header")).readInt32LE(0) % GGML_QNT_VERSION_FACTOR;
    if (ftype === 0) return "f32";
    if (ftype === 1) return "f16";
    return QUANT_TYPE_NAMES.find((t) => QUANT_TYPES[t].ftype === ftype) ?? `ftype ${ftype}`;
  } finally {
    await r.close();
  }
}

/** `tiny.en-q5_1` → { base: "tiny.en", type: "q5_1" }; names without a type suffix have type undefined. */
export function splitQuantName(name: string): { base: string; type: QuantType | undefined } {
  const m = /^(.+)-(q\d_\d)$/.exec(path.basename(name));
  return m && isQuantType(m[2]!) ? { base: m[1]!, type: m[2] } : { base: name, type: undefined };
}

/**
 * The variant kikitori uses by default: the fastest type whose WER stays within 0.5 points of F16 in
 * `npm run bench` (BENCHMARKS.md, engine speed). tiny.en on the levelled 314 s engine file (600 words,
 * greedy, 2 threads): q8_0 8.3 % WER like F16, in 16 % less CPU time than F16 (interleaved rounds; 33 % at
 * 1 thread); q4_0 needs 32 % less but loses 3.5 points (11.8 %), q4_1 12 points; q5_0 and q5_1 cost more
 * CPU than F16.
 */
export const DEFAULT_QUANTIZATION: QuantType | "f16" = "q8_0";
