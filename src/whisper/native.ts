/**
 * The TypeScript view of kikitori's own whisper.cpp addon (src/whisper/native/addon.cc, built for this
 * CPU by scripts/build-whisper into node_modules/.kikitori-whisper/). Loaded lazily, once.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

export const ADDON_PATH = fileURLToPath(
  new URL("../../node_modules/.kikitori-whisper/kikitori_whisper.node", import.meta.url),
);

/** Everything whisper_full needs that kikitori decides; unset fields take whisper.cpp's defaults. */
export interface WhisperParams {
  threads: number;
  /** ISO code, or "auto" (whisper.cpp detects it on this buffer). */
  language: string;
  translate?: boolean;
  /** 1 = greedy; more = beam search of that width. */
  beamSize?: number;
  /** Candidates sampled at each fallback temperature (greedy only). @defaultValue 5 */
  bestOf?: number;
  temperature?: number;
  /** Step of the temperature fallback; 0 turns the fallback off. @defaultValue 0.2 */
  temperatureInc?: number;
  /** Fallback when the decoded text's entropy is below this (whisper.cpp's stand-in for the compression ratio 2.4). */
  entropyThold?: number;
  /** Fallback when the average log-probability is below this. @defaultValue -1 */
  logprobThold?: number;
  /** A window whose no-speech probability is above this (and log-probability below logprobThold) gives no text. @defaultValue 0.6 */
  noSpeechThold?: number;
  /** Text given to the decoder before this buffer (initial prompt). */
  prompt?: string;
  /** true: do not condition on the text this model decoded in earlier calls. @defaultValue true */
  noContext?: boolean;
  tokenTimestamps?: boolean;
  /** Max segment length in characters (1 with tokenTimestamps: one segment per token). */
  maxLen?: number;
  splitOnWord?: boolean;
  suppressBlank?: boolean;
  suppressNonSpeech?: boolean;
  /** Encoder passes allowed in this call (0 = as many as the buffer needs). */
  maxPasses?: number;
  /** [experimental] encoder context size (0 = the model's 1500 frames). */
  audioCtx?: number;
}

export interface WhisperToken {
  id: number;
  /** "" for special tokens (timestamps, end of text). */
  text: string;
  p: number;
  logprob: number;
  /** Milliseconds from the start of the buffer (only with tokenTimestamps). */
  t0: number;
  t1: number;
}

export interface WhisperSegment {
  /** Milliseconds from the start of the buffer. */
  t0: number;
  t1: number;
  text: string;
  noSpeechProb: number;
  tokens: WhisperToken[];
}

export interface WhisperResult {
  language: string;
  segments: WhisperSegment[];
  /** How much of the buffer was transcribed (ms): less than its length when maxPasses stopped whisper early. */
  consumedMs: number;
  encoderPasses: number;
  timings: {
    encodeMs: number;
    decodeMsPerStep: number;
    batchdMsPerStep: number;
    promptMsPerStep: number;
    sampleMsPerStep: number;
  };
}

export interface LanguageDetection {
  language: string;
  /** Every language whisper knows → probability (they sum to 1). */
  probabilities: Record<string, number>;
}

export interface AddonModel {
  readonly multilingual: boolean;
  transcribe(pcm: Int16Array | Float32Array, params: WhisperParams): Promise<WhisperResult>;
  /** Language probabilities from the first 30 s of `pcm` (one encoder pass and one decoder step). */
  detectLanguage(pcm: Int16Array | Float32Array, threads: number): Promise<LanguageDetection>;
  /** Stops the run in flight at the next graph computation; its promise rejects with "aborted". */
  abort(): void;
  /** Frees the model (after the run in flight, which is aborted). */
  release(): void;
}

export interface VadParams {
  threshold?: number;
  minSpeechMs?: number;
  minSilenceMs?: number;
  maxSpeechSeconds?: number;
  speechPadMs?: number;
  samplesOverlap?: number;
}

export interface AddonVad {
  /** Speech regions in seconds from the start of `pcm`. */
  segments(pcm: Int16Array | Float32Array, params?: VadParams): Promise<{ start: number; end: number }[]>;
  release(): void;
}

export interface Addon {
  load(path: string, opts: { gpu?: boolean; flashAttn?: boolean; gpuDevice?: number }): Promise<AddonModel>;
  loadVad(path: string, threads: number): Promise<AddonVad>;
  /** ggml's reference quantizer (ggml_quantize_chunk) over rows of `nPerRow` values. */
  quantize(type: string, data: Float32Array, nPerRow: number): Uint8Array;
  systemInfo(): string;
  version(): string;
}

let addon: Addon | undefined;

/** The addon, or an error that says how to build it. */
export function loadAddon(): Addon {
  if (addon) return addon;
  if (!existsSync(ADDON_PATH))
    throw new Error(`kikitori's whisper.cpp addon is not built (${ADDON_PATH}): run scripts/build-whisper`);
  addon = createRequire(import.meta.url)(ADDON_PATH) as Addon;
  return addon;
}
