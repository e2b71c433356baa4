// Silero VAD (the voice activity detector of the PyPI package `silero-vad`) → whisper.cpp's ggml VAD
// format, in TypeScript. The layout is that of whisper.cpp's models/convert-silero-vad-to-ggml.py (read by
// whisper_vad_init_with_params in whisper.cpp 1.9): a header (magic, "silero-16k", version, window 512,
// context 64, encoder and LSTM sizes), then the 16 kHz model's tensors, each as (n_dims, name length,
// type, dims innermost first, name, data): convolution weights and the STFT basis as float16, the rest as
// float32. The weights come from the package's TorchScript file (silero_vad.jit); no code in it is run.
import { createHash } from "node:crypto";
import { open, readdir, rename, rm } from "node:fs/promises";
import path from "node:path";
import { floatToHalf } from "./fp16.js";
import { openTorchCheckpoint, TorchTensor } from "./import/torch-checkpoint.js";
import type { PyValue } from "./pickle.js";
import { ZipArchive } from "./zip.js";

/** The cached model's name (ggml-silero-v6.2.0.bin), as whisper.cpp's download-vad-model.sh names it. */
export const SILERO_VAD_MODEL = "silero-v6.2.0";
/**
 * SHA-256 of the published ggml-silero-v6.2.0.bin (885,098 bytes; from independent public manifests),
 * which this converter reproduces byte for byte from the silero-vad 6.2.0 wheel.
 */
export const SILERO_VAD_SHA256 = "2aa269b785eeb53a82983a20501ddf7c1d9c48e33ab63a41391ac6c9f7fb6987";
/** Its public home (whisper.cpp's VAD models). */
export const SILERO_VAD_URL =
  "https://huggingface.co/ggml-org/whisper-vad/resolve/main/ggml-silero-v6.2.0.bin";

const GGML_MAGIC = 0x67676d6c;
const F32 = 0;
const F16 = 1;

/** What the converter writes for one tensor of the TorchScript module `_model` (the 16 kHz network). */
interface TensorPlan {
  /** Attribute path below `_model`. */
  path: string[];
  /** float16 for convolution weights and the STFT basis, as the reference converter writes them. */
  half: boolean;
  /** Keep every dimension (the STFT basis); otherwise size-1 dimensions are squeezed out, as numpy's squeeze does. */
  keepDims?: boolean;
}

const ENCODER_LAYERS = 4;
const PLAN: TensorPlan[] = [
  ...Array.from({ length: ENCODER_LAYERS }, (_, i): TensorPlan[] => [
    { path: ["encoder", String(i), "reparam_conv", "weight"], half: true },
    { path: ["encoder", String(i), "reparam_conv", "bias"], half: false },
  ]).flat(),
  { path: ["decoder", "rnn", "weight_ih"], half: false },
  { path: ["decoder", "rnn", "weight_hh"], half: false },
  { path: ["decoder", "rnn", "bias_ih"], half: false },
  { path: ["decoder", "rnn", "bias_hh"], half: false },
  { path: ["decoder", "decoder", "2", "weight"], half: true },
  { path: ["decoder", "decoder", "2", "bias"], half: false },
  { path: ["stft", "forward_basis_buffer"], half: true, keepDims: true },
];

/** The hyperparameters whisper.cpp reads, fixed by Silero VAD v5/v6's 16 kHz network. */
const HEADER = {
  modelType: "silero-16k",
  windowSamples: 512,
  contextSamples: 64,
  encoder: [
    [129, 128, 3],
    [128, 64, 3],
    [64, 64, 3],
    [64, 128, 3],
  ],
  lstm: [128, 128],
  finalConv: [128, 1],
};

export interface VadConversion {
  file: string;
  bytes: number;
  sha256: string;
}

/**
 * Converts `silero_vad.jit` (from the `silero-vad` wheel of `version`, e.g. "6.2.0") into `outFile`,
 * written through a temporary file and renamed, so readers never see half a model.
 */
export async function convertSileroVad(
  jitFile: string,
  version: string,
  outFile: string,
): Promise<VadConversion> {
  const parts = version.split(".").map(Number);
  if (parts.length !== 3 || parts.some((n) => !Number.isInteger(n)))
    throw new Error(`silero-vad version "${version}" is not major.minor.patch`);
  const ckpt = await openTorchCheckpoint(jitFile, { scripted: true });
  try {
    const model = child(ckpt.root, ["_model"], jitFile);
    const chunks: Buffer[] = [header(parts as [number, number, number])];
    for (const plan of PLAN) {
      const tensor = child(model, plan.path, jitFile);
      if (!(tensor instanceof TorchTensor) || tensor.dtype !== "float32")
        throw new Error(`${jitFile}: _model.${plan.path.join(".")} is not a float32 tensor`);
      const values = new Float32Array(tensor.bytes / 4);
      const raw = await ckpt.reader.read(tensor.offset, tensor.bytes, plan.path.join("."));
      raw.copy(Buffer.from(values.buffer));
      const shape = plan.keepDims ? tensor.shape : tensor.shape.filter((d) => d !== 1);
      chunks.push(tensorRecord(`_model.${plan.path.join(".")}`, [...shape].reverse(), values, plan.half));
    }
    const data = Buffer.concat(chunks);
    const tmp = `${outFile}.${process.pid}.partial`;
    const fh = await open(tmp, "w");
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, outFile).catch(async (e: unknown) => {
      await rm(tmp, { force: true });
      throw e;
    });
    return { file: outFile, bytes: data.length, sha256: createHash("sha256").update(data).digest("hex") };
  } finally {
    await ckpt.reader.close();
  }
}

/**
 * Converts the model inside the `silero-vad` wheel found in `wheelDir` (as pip downloads it):
 * `silero_vad/data/silero_vad.jit`, versioned by the wheel's file name.
 */
export async function convertSileroVadWheel(wheelDir: string, outFile: string): Promise<VadConversion> {
  const wheel = (await readdir(wheelDir)).find((f) => /^silero_vad-[\d.]+-.*\.whl$/.test(f));
  if (!wheel) throw new Error(`no silero_vad wheel in ${wheelDir}`);
  const version = /^silero_vad-([\d.]+)-/.exec(wheel)![1]!;
  const zip = await ZipArchive.open(path.join(wheelDir, wheel));
  const jit = path.join(wheelDir, "silero_vad.jit");
  try {
    const entry = zip.entry("silero_vad/data/silero_vad.jit");
    if (!entry) throw new Error(`${wheel} holds no silero_vad/data/silero_vad.jit`);
    await zip.extract(entry, jit);
  } finally {
    await zip.close();
  }
  return convertSileroVad(jit, version, outFile);
}

function child(root: PyValue, names: string[], file: string): PyValue {
  let at = root;
  for (const [i, name] of names.entries()) {
    if (!(at instanceof Map) || !at.has(name))
      throw new Error(`${file}: the TorchScript model has no ${names.slice(0, i + 1).join(".")}`);
    at = at.get(name) as PyValue;
  }
  return at;
}

function int32s(values: number[]): Buffer {
  const b = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => b.writeInt32LE(v, i * 4));
  return b;
}

function header([major, minor, patch]: [number, number, number]): Buffer {
  const type = Buffer.from(HEADER.modelType, "utf8");
  return Buffer.concat([
    int32s([GGML_MAGIC, type.length]),
    type,
    int32s([major, minor, patch, HEADER.windowSamples, HEADER.contextSamples, HEADER.encoder.length]),
    int32s(HEADER.encoder.flat()),
    int32s([...HEADER.lstm, ...HEADER.finalConv]),
  ]);
}

/** One tensor as whisper.cpp's VAD loader reads it; `dims` innermost first. */
function tensorRecord(name: string, dims: number[], values: Float32Array, half: boolean): Buffer {
  const nameBytes = Buffer.from(name, "utf8");
  let data: Buffer;
  if (half) {
    data = Buffer.alloc(values.length * 2);
    values.forEach((v, i) => data.writeUInt16LE(floatToHalf(v), i * 2));
  } else data = Buffer.from(values.buffer, values.byteOffset, values.byteLength);
  return Buffer.concat([int32s([dims.length, nameBytes.length, half ? F16 : F32, ...dims]), nameBytes, data]);
}
