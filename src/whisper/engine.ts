/**
 * The transcription engine: decoded windows in, one Transcript out.
 *
 * Concurrency: the engine owns `slots` whisper.cpp contexts (one model copy each, each in its own worker
 * process, see isolated.ts) and runs at most one transcription per context; further calls wait in a FIFO
 * queue. One context per slot because whisper.cpp serialises work on a context anyway.
 *
 * Windows: whisper works on 30 s windows, so the engine decodes audio in windows of at most 30 s cut at
 * a quiet point and hands each to whisper.cpp separately. Memory stays flat for any input length.
 *
 * Abort: the signal kills the slot's worker process, so the call rejects and the slot frees at once;
 * the next transcription on that slot reloads the model first.
 */
import { cpus } from "node:os";
import type { Readable } from "node:stream";
import type { NativeModel, NativeSegment, NativeTranscribeParams } from "./addon.js";
import { openAudio } from "./audio.js";
import { loadIsolatedModel } from "./isolated.js";
import { SAMPLE_RATE, hasSound } from "./energy.js";
import { LANGUAGE_NAMES } from "./languages.js";
import type { Progress, Segment, TranscribeOptions, Transcript, Word } from "./types.js";

export interface EngineOptions {
  /** Use the CUDA build of whisper.cpp. @defaultValue false */
  gpu?: boolean;
  /** Threads per transcription. @defaultValue the host's cores divided among slots, at most 8 */
  threads?: number;
  /** Transcriptions that may run at once (one model copy each). @defaultValue 1 */
  slots?: number;
}

export interface TranscribeControl {
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
  /** Called when a slot is free and work begins (time before it was spent queued). */
  onStart?: () => void;
}

/** A transcription option the engine cannot honour; `field` names it as the caller spelled it in TranscribeOptions. */
export class InvalidOptionError extends Error {
  readonly code = "ValidationError";
  constructor(
    readonly field: string,
    reason: string,
  ) {
    super(`${field}: ${reason}`);
    this.name = "InvalidOptionError";
  }
}

const WINDOW_SECONDS = 30;
const CUT_SEARCH_SECONDS = 5;
/** Words further apart than this start a new segment when segments are rebuilt from word timings. */
const SEGMENT_GAP_SECONDS = 1;
const MAX_WORDS_PER_SEGMENT = 40;

export class WhisperEngine {
  private readonly idle: NativeModel[];
  private readonly waiting: Array<(m: NativeModel) => void> = [];
  private closed = false;

  private constructor(
    private readonly models: NativeModel[],
    private readonly threads: number,
  ) {
    this.idle = [...models];
  }

  static async load(modelPath: string, opts: EngineOptions = {}): Promise<WhisperEngine> {
    const slots = opts.slots ?? 1;
    if (!Number.isInteger(slots) || slots < 1)
      throw new RangeError(`slots must be a positive integer, got ${slots}`);
    const threads = opts.threads ?? Math.max(1, Math.min(8, Math.floor(cpus().length / slots)));
    const models: NativeModel[] = [];
    try {
      for (let i = 0; i < slots; i++)
        models.push(await loadIsolatedModel(modelPath, { gpu: opts.gpu ?? false }));
    } catch (e) {
      await Promise.all(models.map((m) => m.release()));
      throw e;
    }
    return new WhisperEngine(models, threads);
  }

  /** Transcriptions running now. */
  get running(): number {
    return this.models.length - this.idle.length;
  }

  /** Transcriptions waiting for a free slot. */
  get queued(): number {
    return this.waiting.length;
  }

  async transcribe(
    input: string | Readable,
    opts: TranscribeOptions = {},
    { signal, onProgress, onStart }: TranscribeControl = {},
  ): Promise<Transcript> {
    const params = compileParams(opts, this.threads);
    if (!this.models[0]!.multilingual && params.language !== "auto" && params.language !== "en") {
      throw new InvalidOptionError(
        "language",
        `the model is English-only and cannot transcribe "${params.language}"`,
      );
    }
    const model = await this.acquire(signal);
    onStart?.();
    // Until the native run in flight settles (at once when stopped), the context is busy.
    let inFlight: Promise<unknown> | undefined;
    try {
      const audio = await openAudio(input, {
        windowSeconds: WINDOW_SECONDS,
        cutSearchSeconds: CUT_SEARCH_SECONDS,
        signal,
      });
      const segments: Omit<Segment, "id">[] = [];
      let language = !model.multilingual ? "en" : params.language === "auto" ? "" : params.language;
      let decodedSeconds = 0;
      const report = (processed: number) =>
        onProgress?.({
          processedSeconds: processed,
          totalSeconds: Math.max(audio.durationSeconds ?? 0, processed),
        });
      for await (const window of audio) {
        const offset = window.startSeconds;
        const length = window.samples.length / SAMPLE_RATE;
        decodedSeconds = offset + length;
        report(offset);
        if (!hasSound(window.samples)) continue;
        // Whisper detects the language once and keeps it; so do we, from the first window with sound.
        const run = model.transcribe(window.samples, { ...params, language: language || "auto" }, (pct) =>
          report(offset + (Math.min(100, pct) / 100) * length),
        );
        inFlight = run.result.catch(() => undefined);
        const result = await abortable(run.result, signal, run.stop);
        inFlight = undefined;
        language ||= result.language;
        segments.push(...toSegments(result.segments, offset, length, params.maxLen === 1));
      }
      report(decodedSeconds);
      return {
        text: segments
          .map((s) => s.text)
          .join("")
          .trim(),
        language: language || "en",
        duration: decodedSeconds,
        segments: segments.map((s, id) => ({ id, ...s })),
      };
    } finally {
      if (inFlight) void inFlight.then(() => this.release(model));
      else this.release(model);
    }
  }

  /** Releases the models; transcriptions still waiting for a slot are rejected. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.models.map((m) => m.release()));
  }

  private acquire(signal: AbortSignal | undefined): Promise<NativeModel> {
    if (this.closed) return Promise.reject(new Error("the whisper engine is closed"));
    signal?.throwIfAborted();
    const free = this.idle.pop();
    if (free) return Promise.resolve(free);
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        const i = this.waiting.indexOf(grant);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(signal!.reason);
      };
      const grant = (m: NativeModel) => {
        signal?.removeEventListener("abort", onAbort);
        resolve(m);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiting.push(grant);
    });
  }

  private release(model: NativeModel): void {
    const next = this.waiting.shift();
    if (next) next(model);
    else this.idle.push(model);
  }
}

/** Every native field set explicitly; validation of user input happens at the front doors. */
function compileParams(opts: TranscribeOptions, defaultThreads: number): NativeTranscribeParams {
  if (opts.language && opts.language !== "auto" && !(opts.language in LANGUAGE_NAMES)) {
    throw new InvalidOptionError("language", `"${opts.language}" is not a language whisper knows`);
  }
  const fixedTemperature = opts.temperature !== undefined && opts.temperature > 0;
  return {
    language: opts.language ?? "auto",
    translate: opts.translate ?? false,
    maxThreads: opts.threads ?? defaultThreads,
    prompt: opts.prompt ?? "",
    temperature: opts.temperature ?? 0,
    // Like OpenAI's API: temperature 0 means "start greedy, fall back hotter"; a set temperature is kept.
    temperatureInc: fixedTemperature ? 0 : 0.2,
    beamSize: opts.beamSize ?? 1,
    tokenTimestamps: opts.wordTimestamps ?? false,
    maxLen: opts.wordTimestamps ? 1 : 0,
  };
}

/** Rejects with the signal's reason as soon as it fires, asking the native run to stop. */
function abortable<T>(work: Promise<T>, signal: AbortSignal | undefined, stop: () => void): Promise<T> {
  if (!signal) return work;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      stop();
      reject(signal.reason);
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** whisper.cpp's marker for a window it heard nothing in; not speech. */
/**
 * Segments that are only an annotation ("[BLANK_AUDIO]", "[MUSIC PLAYING]", "(inaudible)", "♪", a lone
 * "[") rather than words: the GPU addon cannot suppress those tokens while decoding, so they are dropped here.
 */
const BLANK_AUDIO = /^\s*\[BLANK_AUDIO\]\s*$/;
const NON_SPEECH = /^\s*(\[[^\]]*\]?|\([^)]*\)?|[♪♫*\-–—.…\s]+)\s*$/;

export const isAnnotationOnly = (text: string) => NON_SPEECH.test(text);

/** Window-relative native segments → absolute segments (words regrouped into segments when asked). */
function toSegments(
  native: NativeSegment[],
  offset: number,
  length: number,
  perToken: boolean,
): Omit<Segment, "id">[] {
  const at = (ms: number) => offset + Math.min(Math.max(0, ms / 1000), length);
  // Per-token segments are single tokens ("." continues a word), so only whole annotations are dropped there.
  const kept = native.filter(
    (s) => s.text.trim() !== "" && !(perToken ? BLANK_AUDIO.test(s.text) : isAnnotationOnly(s.text)),
  );
  if (!perToken)
    return kept.map((s) => ({ start: at(s.t0), end: Math.max(at(s.t0), at(s.t1)), text: s.text }));

  // One native segment per token: a token not starting with a space continues the previous word.
  const words: Word[] = [];
  for (const t of kept) {
    const last = words[words.length - 1];
    if (last && !/^\s/.test(t.text)) {
      last.word += t.text;
      last.end = Math.max(last.end, at(t.t1));
    } else {
      words.push({ word: t.text.trim(), start: at(t.t0), end: Math.max(at(t.t0), at(t.t1)) });
    }
  }
  const segments: Omit<Segment, "id">[] = [];
  let current: Word[] = [];
  const flush = () => {
    if (current.length === 0) return;
    segments.push({
      start: current[0]!.start,
      end: current[current.length - 1]!.end,
      text: " " + current.map((w) => w.word).join(" "),
      words: current,
    });
    current = [];
  };
  for (const w of words) {
    const prev = current[current.length - 1];
    if (prev && (w.start - prev.end > SEGMENT_GAP_SECONDS || current.length >= MAX_WORDS_PER_SEGMENT))
      flush();
    current.push(w);
    if (/[.?!。？！]$/.test(w.word)) flush();
  }
  flush();
  return segments;
}
