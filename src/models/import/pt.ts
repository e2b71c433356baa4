// OpenAI Whisper checkpoint (`tiny.pt` … `large-v3.pt`: `{"dims": ModelDimensions, "model_state_dict":
// state_dict}` written by torch.save) → whisper.cpp ggml, as whisper.cpp's convert-pt-to-ggml.py does it:
// hyper-parameters from `dims`, the mel filterbank computed (mel.ts), the vocabulary from Whisper's tiktoken
// files, and every tensor under its own name, widened to F32 where whisper.cpp wants F32. Streams: each
// tensor is read in chunks by position, so a large-v3 checkpoint converts in constant memory.
import { stat } from "node:fs/promises";
import { bfloat16ToFloat, floatToHalf, halfToFloat } from "../fp16.js";
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
import { isMultilingual, tiktokenVocabulary, whisperTensors } from "../whisper-layout.js";
import {
  isTorchCheckpoint,
  openTorchCheckpoint,
  TorchTensor,
  type TorchCheckpoint,
} from "./torch-checkpoint.js";
import type { ImportProgress, ImportResult, ModelImporter } from "./types.js";

const CHUNK_BYTES = 4 << 20;

/** Buffers whisper.cpp does not load (OpenAI registers them non-persistent, but a re-saved model may carry them). */
const IGNORED = new Set(["decoder.mask", "alignment_heads"]);
const CONV_BIASES = new Set(["encoder.conv1.bias", "encoder.conv2.bias"]);

const DIMS = [
  "n_mels",
  "n_audio_ctx",
  "n_audio_state",
  "n_audio_head",
  "n_audio_layer",
  "n_vocab",
  "n_text_ctx",
  "n_text_state",
  "n_text_head",
  "n_text_layer",
] as const;

function field(ckpt: TorchCheckpoint, map: unknown, key: string): unknown {
  if (!(map instanceof Map) || !map.has(key)) {
    throw new Error(`${ckpt.file}: not an OpenAI Whisper checkpoint (no "${key}")`);
  }
  return map.get(key);
}

function hparams(ckpt: TorchCheckpoint): GgmlHparams {
  const dims = field(ckpt, ckpt.root, "dims");
  const d = Object.fromEntries(
    DIMS.map((k) => {
      const v = field(ckpt, dims, k);
      if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) {
        throw new Error(`${ckpt.file}: dims.${k} is ${JSON.stringify(v)}, expected a positive integer`);
      }
      return [k, v];
    }),
  ) as Record<(typeof DIMS)[number], number>;
  if (d.n_text_state !== d.n_audio_state) {
    throw new Error(
      `${ckpt.file}: n_text_state ${d.n_text_state} differs from n_audio_state ${d.n_audio_state}`,
    );
  }
  return {
    nVocab: d.n_vocab,
    nAudioCtx: d.n_audio_ctx,
    nAudioState: d.n_audio_state,
    nAudioHead: d.n_audio_head,
    nAudioLayer: d.n_audio_layer,
    nTextCtx: d.n_text_ctx,
    nTextState: d.n_text_state,
    nTextHead: d.n_text_head,
    nTextLayer: d.n_text_layer,
    nMels: d.n_mels,
    ftype: 1,
  };
}

/** The checkpoint's tensors in state_dict order, each matched to what whisper.cpp expects. */
function plan(
  ckpt: TorchCheckpoint,
  h: GgmlHparams,
): { name: string; ne: number[]; type: GgmlType; src: TorchTensor }[] {
  const state = field(ckpt, ckpt.root, "model_state_dict") as Map<unknown, unknown>;
  if (!(state instanceof Map)) throw new Error(`${ckpt.file}: model_state_dict is not a dict`);
  const expected = new Map(whisperTensors(h).map((t) => [t.name, t]));
  const out = [];
  for (const [name, src] of state) {
    if (typeof name !== "string" || !(src instanceof TorchTensor)) {
      throw new Error(`${ckpt.file}: model_state_dict entry ${JSON.stringify(name)} is not a tensor`);
    }
    const want = expected.get(name);
    if (!want) {
      if (IGNORED.has(name)) continue;
      throw new Error(`${ckpt.file}: tensor ${name} is not part of a Whisper model whisper.cpp can load`);
    }
    expected.delete(name);
    // ggml keeps the conv biases as [S, 1]; OpenAI's are [S] (convert-pt-to-ggml.py reshapes them).
    const shape = CONV_BIASES.has(name) ? [want.ne[1]!] : [...want.ne].reverse();
    if (src.shape.join() !== shape.join()) {
      throw new Error(
        `${ckpt.file}: tensor ${name} has shape [${src.shape}], expected [${shape}] for dims ${JSON.stringify(h)}`,
      );
    }
    out.push({ name, ne: want.ne, type: want.type, src });
  }
  if (expected.size > 0) {
    throw new Error(
      `${ckpt.file}: missing tensors: ${[...expected.keys()].slice(0, 5).join(", ")}${expected.size > 5 ? ", …" : ""}`,
    );
  }
  return out;
}

let halfTable: Float32Array | undefined;

/** Elements of `raw` (in the tensor's dtype) as bytes of the ggml type. */
function convert(raw: Buffer, dtype: TorchTensor["dtype"], type: GgmlType): Uint8Array {
  if ((dtype === "float16" && type === GGML_F16) || (dtype === "float32" && type === GGML_F32)) return raw;
  const n = raw.length / { float16: 2, bfloat16: 2, float32: 4, float64: 8 }[dtype];
  const values = new Float32Array(n);
  if (dtype === "float16") {
    halfTable ??= Float32Array.from({ length: 65536 }, (_, b) => halfToFloat(b));
    for (let i = 0; i < n; i++) values[i] = halfTable[raw.readUInt16LE(2 * i)]!;
  } else if (dtype === "bfloat16")
    for (let i = 0; i < n; i++) values[i] = bfloat16ToFloat(raw.readUInt16LE(2 * i));
  else if (dtype === "float32") for (let i = 0; i < n; i++) values[i] = raw.readFloatLE(4 * i);
  else for (let i = 0; i < n; i++) values[i] = raw.readDoubleLE(8 * i);
  if (type === GGML_F32) return new Uint8Array(values.buffer);
  const half = new Uint16Array(n);
  for (let i = 0; i < n; i++) half[i] = floatToHalf(values[i]!);
  return new Uint8Array(half.buffer);
}

async function importPt(
  src: string,
  outFile: string,
  onProgress?: (p: ImportProgress) => void,
): Promise<ImportResult> {
  const ckpt = await openTorchCheckpoint(src);
  try {
    const h = hparams(ckpt);
    const tensors = plan(ckpt, h);
    const tokens = await tiktokenVocabulary(isMultilingual(h.nVocab));
    const mel = melFilterbank(h.nMels);
    const bytesTotal =
      48 +
      8 +
      mel.data.byteLength +
      4 +
      tokens.reduce((a, t) => a + 4 + t.length, 0) +
      tensors.reduce((a, t) => a + tensorRecordBytes(t.name, t.type, t.ne), 0);
    return await writeViaPartial(outFile, async (tmp) => {
      const w = await GgmlWriter.create(tmp);
      try {
        await w.header(h);
        await w.melFilters(mel.nMels, mel.nBins, mel.data);
        await w.vocabulary(tokens);
        for (const t of tensors) {
          await w.tensorHeader(t.name, t.type, t.ne);
          const step = Math.max(t.src.itemBytes, CHUNK_BYTES - (CHUNK_BYTES % t.src.itemBytes));
          for (let off = 0; off < t.src.bytes; off += step) {
            const raw = await ckpt.reader.read(t.src.offset + off, Math.min(step, t.src.bytes - off), t.name);
            await w.write(convert(raw, t.src.dtype, t.type));
            onProgress?.({ bytesDone: w.bytesWritten, bytesTotal });
          }
        }
      } catch (err) {
        await w.abort();
        throw err;
      }
      const { bytes, sha256 } = await w.close();
      if (bytes !== bytesTotal) throw new Error(`${tmp}: wrote ${bytes} bytes, expected ${bytesTotal}`);
      return { format: "pt", source: src, file: outFile, bytes, sha256, tensors: tensors.length, hparams: h };
    });
  } finally {
    await ckpt.reader.close();
  }
}

async function detectPt(src: string): Promise<boolean> {
  const st = await stat(src).catch(() => undefined);
  return !!st?.isFile() && (await isTorchCheckpoint(src));
}

export const ptImporter: ModelImporter = {
  name: "pt",
  description: "OpenAI Whisper checkpoint (*.pt, as torch.save writes it: tiny … large-v3)",
  detect: detectPt,
  import: importPt,
};
