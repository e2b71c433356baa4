/**
 * The narrow bridge to whisper.cpp: kikitori's own addon (built for this CPU, native.ts) on CPU, the
 * prebuilt CUDA build of @fugood/whisper.node on GPU. This is the only file that loads a native addon: options cross the
 * boundary fully compiled, and native failures come out as typed errors.
 */
import { open } from "node:fs/promises";
import type { TranscribeResult, WhisperContext } from "@fugood/whisper.node";
import {
  loadAddon,
  type Addon,
  type AddonModel,
  type AddonVad,
  type LanguageDetection,
  type VadParams,
  type WhisperParams,
  type WhisperResult,
} from "./native.js";

export type { LanguageDetection, VadParams, WhisperParams, WhisperResult, WhisperSegment } from "./native.js";

/** A stretch of speech, in seconds from the start of the buffer it was found in. */
export interface SpeechRegion {
  start: number;
  end: number;
}

/** How to find speech: the ggml Silero VAD model file, threads, and whisper.cpp's VAD parameters. */
export interface SpeechOptions extends VadParams {
  model: string;
  threads: number;
}

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

export interface NativeRun<T> {
  /** Asks whisper.cpp to stop; the result then rejects (at the next graph computation on CPU). */
  stop(): void;
  result: Promise<T>;
}

/** One loaded model (one whisper.cpp context and state, reused by every call). One run at a time. */
export interface NativeModel {
  /** English-only models (*.en) have no language tokens: asking them to detect a language yields garbage. */
  readonly multilingual: boolean;
  transcribe(pcm16k: Int16Array, params: WhisperParams): NativeRun<WhisperResult>;
  /** Language probabilities of the first 30 s; undefined where the addon cannot tell them (GPU). */
  detectLanguage(pcm16k: Int16Array, threads: number): NativeRun<LanguageDetection | undefined>;
  /** Speech regions (Silero VAD through whisper.cpp's CPU build, also beside a GPU model). */
  speech(pcm16k: Int16Array, opts: SpeechOptions): NativeRun<SpeechRegion[]>;
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
  const model = opts.gpu
    ? await loadCudaModel(modelPath, multilingual)
    : await loadCpuModel(modelPath, multilingual);
  const vad = speechDetector();
  return {
    ...model,
    speech: vad.speech,
    release: async () => {
      vad.release();
      await model.release();
    },
  };
}

/** The VAD model is loaded on first use and kept (one whisper.cpp VAD context, reloaded if the file changes). */
function speechDetector() {
  let loaded: { key: string; vad: Promise<AddonVad> } | undefined;
  return {
    speech(pcm16k: Int16Array, { model, threads, ...params }: SpeechOptions): NativeRun<SpeechRegion[]> {
      const key = `${model}\0${threads}`;
      if (loaded?.key !== key) {
        const previous = loaded?.vad;
        void previous?.then((v) => v.release()).catch(() => undefined);
        loaded = { key, vad: Promise.resolve().then(() => loadAddon().loadVad(model, threads)) };
      }
      const vad = loaded.vad;
      return {
        // A VAD pass over a block is short (well under a second per minute of audio): it runs to the end.
        stop: () => undefined,
        result: vad
          .then((v) => v.segments(pcm16k, params))
          .catch((e: unknown) => {
            throw new TranscriptionError(`whisper.cpp VAD (${model}): ${errorText(e)}`, { cause: e });
          }),
      };
    },
    release(): void {
      void loaded?.vad.then((v) => v.release()).catch(() => undefined);
      loaded = undefined;
    },
  };
}

/**
 * CPU: kikitori's own addon (src/whisper/native), whisper.cpp 1.9 compiled for this CPU by
 * scripts/build-whisper. Flash attention on: measured faster on CPU with this ggml (BENCHMARKS.md).
 */
async function loadCpuModel(modelPath: string, multilingual: boolean): Promise<Omit<NativeModel, "speech">> {
  let addon: Addon;
  try {
    addon = loadAddon();
  } catch (e) {
    throw new ModelLoadError(errorText(e), { cause: e });
  }
  let model: AddonModel;
  try {
    model = await addon.load(modelPath, { gpu: false, flashAttn: true });
  } catch (e) {
    throw new ModelLoadError(`whisper.cpp could not load model ${modelPath}: ${errorText(e)}`, { cause: e });
  }
  const run = <T>(work: () => Promise<T>): NativeRun<T> => ({
    stop: () => model.abort(),
    result: work().catch((e: unknown) => {
      throw new TranscriptionError(`whisper.cpp: ${errorText(e)}`, { cause: e });
    }),
  });
  return {
    multilingual,
    transcribe: (pcm, params) => run(() => model.transcribe(pcm, params)),
    detectLanguage: (pcm, threads) => run(() => model.detectLanguage(pcm, threads)),
    release: async () => model.release(),
  };
}

/**
 * GPU: the CUDA variant of the prebuilt @fugood/whisper.node (building CUDA from source at install time
 * is not worth its toolchain). It samples greedily whatever beamSize says.
 */
async function loadCudaModel(modelPath: string, multilingual: boolean): Promise<Omit<NativeModel, "speech">> {
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
    transcribe(pcm16k, params) {
      // The addon copies the buffer into floats before returning, so a view's backing store is fine to slice.
      const bytes = pcm16k.buffer.slice(pcm16k.byteOffset, pcm16k.byteOffset + pcm16k.byteLength);
      const { stop, promise } = ctx.transcribeData(bytes as ArrayBuffer, {
        language: params.language,
        translate: params.translate ?? false,
        maxThreads: params.threads,
        prompt: params.prompt ?? "",
        temperature: params.temperature ?? 0,
        temperatureInc: params.temperatureInc ?? 0.2,
        beamSize: params.beamSize ?? 1,
        bestOf: params.bestOf ?? 5,
        tokenTimestamps: params.tokenTimestamps ?? false,
        maxLen: params.maxLen ?? 0,
      });
      const lengthMs = (pcm16k.length / 16) | 0;
      return {
        stop: () => void stop().catch(() => undefined),
        result: promise.then(
          (r: TranscribeResult): WhisperResult => ({
            language: r.language ?? "",
            // This addon carries neither tokens nor probabilities; it always transcribes the whole buffer.
            segments: r.segments.map((s) => ({
              text: s.text,
              t0: s.t0,
              t1: s.t1,
              noSpeechProb: 0,
              tokens: [],
            })),
            consumedMs: lengthMs,
            encoderPasses: 0,
            timings: {
              encodeMs: 0,
              decodeMsPerStep: 0,
              batchdMsPerStep: 0,
              promptMsPerStep: 0,
              sampleMsPerStep: 0,
            },
          }),
          (e: unknown) => {
            throw new TranscriptionError(`whisper.cpp: ${errorText(e)}`, { cause: e });
          },
        ),
      };
    },
    detectLanguage: () => ({ stop: () => undefined, result: Promise.resolve(undefined) }),
    release: () => ctx.release(),
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
