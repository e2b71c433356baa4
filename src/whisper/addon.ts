/**
 * The narrow bridge to whisper.cpp: smart-whisper (built for this CPU) on CPU, the CUDA build of
 * @fugood/whisper.node on GPU. This is the only file that loads a native addon: options cross the
 * boundary fully compiled, and native failures come out as typed errors.
 */
import { open } from "node:fs/promises";
import type { TranscribeResult, WhisperContext } from "@fugood/whisper.node";
import type { TranscribeDetailedResult, TranscribeParams, WhisperModel } from "smart-whisper";

/** The model file could not be opened as a whisper.cpp model. */
export class ModelLoadError extends Error {
  readonly code = "ModelError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ModelLoadError";
  }
}

/** whisper.cpp failed while transcribing. */
export class TranscriptionError extends Error {
  readonly code = "ModelError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "TranscriptionError";
  }
}

/** Every field set: the addon reads only the keys present, so nothing is left to its defaults by accident. */
export interface NativeTranscribeParams {
  language: string;
  translate: boolean;
  maxThreads: number;
  prompt: string;
  temperature: number;
  /** 0.2 like whisper: retry hotter when a decode fails the compression/logprob checks. */
  temperatureInc: number;
  beamSize: number;
  tokenTimestamps: boolean;
  /** 0 = whole segments; 1 with tokenTimestamps = one segment per token (how word timings are read). */
  maxLen: number;
}

export interface NativeSegment {
  text: string;
  /** Milliseconds from the start of the buffer given to the addon. */
  t0: number;
  t1: number;
}

export interface NativeResult {
  language: string;
  segments: NativeSegment[];
}

export interface NativeRun {
  /** Asks whisper.cpp to stop where the addon can (the GPU one checks between runs; the CPU one cannot). */
  stop(): void;
  result: Promise<NativeResult>;
}

/** One loaded model (one whisper.cpp context). Runs one transcription at a time. */
export interface NativeModel {
  /** English-only models (*.en) have no language tokens: asking them to detect a language yields garbage. */
  readonly multilingual: boolean;
  transcribe(
    pcm16k: Int16Array,
    params: NativeTranscribeParams,
    onProgress: (pct: number) => void,
  ): NativeRun;
  release(): Promise<void>;
}

const GGML_MAGIC = 0x67676d6c;

/** True when the file starts with the ggml magic ("lmgg" on disk). */
export async function isGgmlFile(path: string): Promise<boolean> {
  return (await readGgmlHeader(path)) !== undefined;
}

/** The vocabulary size from a ggml whisper header (the int32 after the magic), or undefined if not ggml. */
async function readGgmlHeader(path: string): Promise<{ nVocab: number } | undefined> {
  const fh = await open(path, "r");
  try {
    const buf = Buffer.alloc(8);
    const { bytesRead } = await fh.read(buf, 0, 8, 0);
    if (bytesRead < 8 || buf.readUInt32LE(0) !== GGML_MAGIC) return undefined;
    return { nVocab: buf.readInt32LE(4) };
  } finally {
    await fh.close();
  }
}

/** Checks the file is a ggml whisper model and says whether it is multilingual. */
export async function readModelInfo(modelPath: string): Promise<{ multilingual: boolean }> {
  const header = await readGgmlHeader(modelPath).catch(rethrowMissing(modelPath));
  if (!header) throw new ModelLoadError(`model ${modelPath} is not a ggml whisper model (bad magic)`);
  // whisper.cpp's own rule (whisper_vocab::is_multilingual).
  return { multilingual: header.nVocab >= 51865 };
}

/** Loads the model into this process. See isolated.ts for the variant the engine uses. */
export async function loadNativeModel(modelPath: string, opts: { gpu: boolean }): Promise<NativeModel> {
  const { multilingual } = await readModelInfo(modelPath);
  return opts.gpu ? loadCudaModel(modelPath, multilingual) : loadCpuModel(modelPath, multilingual);
}

/**
 * CPU: smart-whisper, a whisper.cpp binding built from source at install time for this machine's CPU
 * (scripts/setup sets -march=native), several times faster than a prebuilt baseline-x86-64 binary.
 */
async function loadCpuModel(modelPath: string, multilingual: boolean): Promise<NativeModel> {
  let sw: typeof import("smart-whisper");
  try {
    sw = await import("smart-whisper");
  } catch (e) {
    throw new ModelLoadError(
      `cannot load the smart-whisper addon (run scripts/setup to build it): ${String(e)}`,
      {
        cause: e,
      },
    );
  }
  let model: WhisperModel;
  try {
    model = await sw.WhisperModel.load(modelPath, false);
  } catch (e) {
    throw new ModelLoadError(`whisper.cpp could not load model ${modelPath}: ${errorText(e)}`, { cause: e });
  }
  return {
    multilingual,
    transcribe(pcm16k, params, onProgress) {
      const samples = Float32Array.from(pcm16k, (s) => s / 32768);
      const windowMs = (pcm16k.length / 16_000) * 1000;
      const result = sw.TranscribeTask.run(model, samples, toSmartParams(params)).then(async (task) => {
        // Only whole segments are reported while running: progress is the end of the latest one.
        task.on("transcribed", (s) => onProgress(Math.min(100, (s.to / windowMs) * 100)));
        // A native failure arrives as the "results" argument (node-addon-api's default OnError).
        const segments: unknown = await task.result;
        if (!Array.isArray(segments)) throw new Error(errorText(segments));
        return segments as TranscribeDetailedResult<boolean>[];
      });
      return {
        // This binding has no abort: the run goes on until it ends (isolated.ts kills the worker instead).
        stop: () => undefined,
        result: result.then(
          (segments) => ({
            language: segments[0]?.lang ?? "",
            segments: segments.map((s) => ({ text: s.text, t0: s.from, t1: s.to })),
          }),
          (e: unknown) => {
            throw new TranscriptionError(`whisper.cpp: ${errorText(e)}`, { cause: e });
          },
        ),
      };
    },
    release: () => model.free(),
  };
}

/** Every whisper_full_params field the engine decides, set explicitly (the binding defaults to beam search). */
function toSmartParams(p: NativeTranscribeParams): Partial<TranscribeParams<"detail", boolean>> {
  return {
    format: "detail", // "detail" carries the detected language
    strategy: p.beamSize > 1 ? 1 : 0, // WhisperSamplingStrategy: GREEDY = 0, BEAM_SEARCH = 1
    beam_size: p.beamSize,
    best_of: 5, // whisper's default: candidates sampled per temperature fallback step
    n_threads: p.maxThreads,
    language: p.language,
    translate: p.translate,
    ...(p.prompt ? { initial_prompt: p.prompt } : {}),
    temperature: p.temperature,
    temperature_inc: p.temperatureInc,
    token_timestamps: p.tokenTimestamps,
    max_len: p.maxLen,
    split_on_word: false,
    // Not suppressed while decoding: on tiny.en that made whisper skip quoted sentences (quotes are
    // "non-speech" tokens); annotation-only segments are dropped after decoding instead (engine.ts).
    suppress_non_speech_tokens: false,
    print_progress: false,
    print_realtime: false,
    print_timestamps: false,
  };
}

/**
 * GPU: the CUDA variant of the prebuilt @fugood/whisper.node (building CUDA from source at install time
 * is not worth its toolchain). It samples greedily whatever beamSize says.
 */
async function loadCudaModel(modelPath: string, multilingual: boolean): Promise<NativeModel> {
  let addon: typeof import("@fugood/whisper.node");
  try {
    addon = await import("@fugood/whisper.node");
  } catch (e) {
    throw new ModelLoadError(
      `cannot load the whisper.cpp addon for ${process.platform}-${process.arch}: ${String(e)}`,
      { cause: e },
    );
  }
  let ctx: WhisperContext;
  try {
    ctx = await addon.initWhisper({ filePath: modelPath, useGpu: true }, "cuda");
  } catch (e) {
    throw new ModelLoadError(`whisper.cpp could not load model ${modelPath}: ${errorText(e)}`, { cause: e });
  }
  return {
    multilingual,
    transcribe(pcm16k, params, onProgress) {
      // The addon copies the buffer into floats before returning, so a view's backing store is fine to slice.
      const bytes = pcm16k.buffer.slice(pcm16k.byteOffset, pcm16k.byteOffset + pcm16k.byteLength);
      const { stop, promise } = ctx.transcribeData(bytes as ArrayBuffer, { ...params, onProgress });
      return {
        stop: () => void stop().catch(() => undefined),
        result: promise.then(toNativeResult, (e: unknown) => {
          throw new TranscriptionError(`whisper.cpp: ${errorText(e)}`, { cause: e });
        }),
      };
    },
    release: () => ctx.release(),
  };
}

function toNativeResult(r: TranscribeResult): NativeResult {
  return {
    language: r.language ?? "",
    segments: r.segments.map((s) => ({ text: s.text, t0: s.t0, t1: s.t1 })),
  };
}

function rethrowMissing(path: string) {
  return (e: unknown): never => {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ModelLoadError(
      code === "ENOENT" ? `model file ${path} does not exist` : `cannot read model ${path}: ${errorText(e)}`,
      { cause: e },
    );
  };
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
