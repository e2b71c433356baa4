// whisper.cpp's legacy ggml model file: writer and reader (ct2-to-ggml.md §3).
import { createHash, type Hash } from "node:crypto";
import { open, type FileHandle } from "node:fs/promises";
import { FileReader } from "./file-reader.js";

export const GGML_MAGIC = 0x67676d6c;

export const GGML_F32 = 0;
export const GGML_F16 = 1;
export type GgmlType = typeof GGML_F32 | typeof GGML_F16;

/** Header fields in file order. */
export interface GgmlHparams {
  nVocab: number;
  nAudioCtx: number;
  nAudioState: number;
  nAudioHead: number;
  nAudioLayer: number;
  nTextCtx: number;
  nTextState: number;
  nTextHead: number;
  nTextLayer: number;
  nMels: number;
  /** ggml_ftype: 0 all F32, 1 mostly F16. */
  ftype: number;
}

const HPARAM_KEYS: (keyof GgmlHparams)[] = [
  "nVocab",
  "nAudioCtx",
  "nAudioState",
  "nAudioHead",
  "nAudioLayer",
  "nTextCtx",
  "nTextState",
  "nTextHead",
  "nTextLayer",
  "nMels",
  "ftype",
];

export function ggmlTypeSize(type: number): number {
  if (type === GGML_F32) return 4;
  if (type === GGML_F16) return 2;
  throw new Error(`unsupported ggml tensor type ${type}`);
}

/** [values per block, bytes per block] of the tensor types kikitori reads: F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0. */
const TYPE_BLOCKS: Readonly<Record<number, [number, number]>> = {
  0: [1, 4],
  1: [1, 2],
  2: [32, 18],
  3: [32, 20],
  6: [32, 22],
  7: [32, 24],
  8: [32, 34],
};

/** Bytes of a tensor's data (quantized types included). */
export function tensorDataBytes(type: number, ne: number[]): number {
  const block = TYPE_BLOCKS[type];
  if (!block) throw new Error(`unsupported ggml tensor type ${type}`);
  return (ne.reduce((a, b) => a * b, 1) / block[0]) * block[1];
}

/** Size of one tensor record (header + data). `ne` is innermost first. */
export function tensorRecordBytes(name: string, type: GgmlType, ne: number[]): number {
  return 12 + 4 * ne.length + Buffer.byteLength(name) + ne.reduce((a, b) => a * b, 1) * ggmlTypeSize(type);
}

/** Sequential, buffered writer that hashes what it writes. */
export class GgmlWriter {
  private buf = Buffer.allocUnsafe(1 << 20);
  private used = 0;
  private pos = 0;
  private readonly hash: Hash = createHash("sha256");

  private constructor(private readonly fh: FileHandle) {}

  static async create(file: string): Promise<GgmlWriter> {
    return new GgmlWriter(await open(file, "w"));
  }

  get bytesWritten(): number {
    return this.pos + this.used;
  }

  async write(data: Uint8Array): Promise<void> {
    if (this.used + data.length > this.buf.length) await this.flush();
    if (data.length >= this.buf.length) {
      this.hash.update(data);
      await this.fh.write(data, 0, data.length, this.pos);
      this.pos += data.length;
      return;
    }
    this.buf.set(data, this.used);
    this.used += data.length;
  }

  private async flush(): Promise<void> {
    if (this.used === 0) return;
    const chunk = this.buf.subarray(0, this.used);
    this.hash.update(chunk);
    await this.fh.write(chunk, 0, chunk.length, this.pos);
    this.pos += this.used;
    this.used = 0;
  }

  private int32s(values: number[]): Promise<void> {
    const b = Buffer.allocUnsafe(4 * values.length);
    values.forEach((v, i) => b.writeInt32LE(v, 4 * i));
    return this.write(b);
  }

  async header(h: GgmlHparams): Promise<void> {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32LE(GGML_MAGIC);
    await this.write(b);
    await this.int32s(HPARAM_KEYS.map((k) => h[k]));
  }

  async melFilters(nMels: number, nBins: number, data: Float32Array): Promise<void> {
    await this.int32s([nMels, nBins]);
    await this.write(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }

  async vocabulary(tokens: Uint8Array[]): Promise<void> {
    await this.int32s([tokens.length]);
    for (const t of tokens) {
      await this.int32s([t.length]);
      await this.write(t);
    }
  }

  /** Record header; the caller then writes exactly ∏ne × type size bytes of data. */
  async tensorHeader(name: string, type: GgmlType, ne: number[]): Promise<void> {
    const nameBytes = Buffer.from(name);
    await this.int32s([ne.length, nameBytes.length, type, ...ne]);
    await this.write(nameBytes);
  }

  /** Flushes and closes; returns the size and SHA-256 of everything written. */
  async close(): Promise<{ bytes: number; sha256: string }> {
    try {
      await this.flush();
    } finally {
      await this.fh.close();
    }
    return { bytes: this.pos, sha256: this.hash.digest("hex") };
  }

  /** Closes without flushing (after an error). */
  async abort(): Promise<void> {
    await this.fh.close().catch(() => undefined);
  }
}

export interface GgmlTensorInfo {
  name: string;
  type: number;
  /** Dimensions, innermost first. */
  ne: number[];
  /** Offset of the tensor data in the file. */
  offset: number;
  bytes: number;
}

export interface GgmlInfo {
  file: string;
  fileBytes: number;
  hparams: GgmlHparams;
  melFilters: { nMels: number; nBins: number; offset: number };
  vocabCount: number;
  tensors: GgmlTensorInfo[];
}

/** True when the file starts with the ggml magic. */
export async function isGgmlFile(file: string): Promise<boolean> {
  const r = await FileReader.open(file);
  try {
    return r.size >= 4 && (await r.read(0, 4, "magic")).readUInt32LE(0) === GGML_MAGIC;
  } finally {
    await r.close();
  }
}

/** Parses a whole ggml model file's structure (tensor data is skipped, not read). */
export async function readGgmlInfo(file: string): Promise<GgmlInfo> {
  const r = await FileReader.open(file);
  try {
    const head = await r.read(0, 56, "header");
    if (head.readUInt32LE(0) !== GGML_MAGIC) throw new Error(`${file}: not a ggml model file (bad magic)`);
    const hparams = Object.fromEntries(
      HPARAM_KEYS.map((k, i) => [k, head.readInt32LE(4 + 4 * i)]),
    ) as unknown as GgmlHparams;
    const nMels = head.readInt32LE(48);
    const nBins = head.readInt32LE(52);
    let pos = 56 + nMels * nBins * 4;
    const vocabCount = (await r.read(pos, 4, "vocabulary count")).readInt32LE(0);
    pos += 4;
    for (let i = 0; i < vocabCount; i++) {
      pos += 4 + (await r.read(pos, 4, `vocabulary entry ${i}`)).readUInt32LE(0);
    }
    const tensors: GgmlTensorInfo[] = [];
    while (pos < r.size) {
      const h = await r.read(pos, 12, `tensor record ${tensors.length}`);
      const nDims = h.readInt32LE(0);
      const nameLen = h.readInt32LE(4);
      const type = h.readInt32LE(8);
      if (nDims < 1 || nDims > 4 || nameLen <= 0 || nameLen > 1024) {
        throw new Error(`${file}: corrupt tensor record ${tensors.length} at offset ${pos}`);
      }
      const rest = await r.read(pos + 12, 4 * nDims + nameLen, `tensor record ${tensors.length}`);
      const ne = Array.from({ length: nDims }, (_, i) => rest.readInt32LE(4 * i));
      const name = rest.toString("utf8", 4 * nDims);
      const offset = pos + 12 + 4 * nDims + nameLen;
      const bytes = tensorDataBytes(type, ne);
      if (offset + bytes > r.size)
        throw new Error(`${file}: truncated: tensor ${name} ends past the end of the file`);
      tensors.push({ name, type, ne, offset, bytes });
      pos = offset + bytes;
    }
    return {
      file,
      fileBytes: r.size,
      hparams,
      melFilters: { nMels, nBins, offset: 56 },
      vocabCount,
      tensors,
    };
  } finally {
    await r.close();
  }
}
