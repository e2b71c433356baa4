/**
 * The transcription engine: decoded windows in, one Transcript out.
 *
 * Concurrency: the engine owns `slots` whisper.cpp contexts (one model copy each, each in its own worker
 * process, see isolated.ts) and runs at most one transcription per context; further calls wait in a FIFO
 * queue. One context per slot because whisper.cpp serialises work on a context anyway.
 *
 * Windows (windows.ts): whisper encodes 30 s at a time whatever the window holds, so the engine packs
 * each window with speech (long silences shortened) and lets whisper.cpp make exactly one encoder pass
 * per window. Like Whisper's own seek loop, the next window starts where the last complete segment
 * ended (the unfinished rest is decoded again, with new audio after it, not as a window of its own);
 * a rest without sound ends the file without a pass. The text of one window conditions the next (as in
 * Whisper), except after a window whose text looks like a loop. Memory stays flat for any input length.
 *
 * Abort: the signal aborts the native run (it stops at the next graph computation); a worker that does
 * not answer is killed and the next transcription on that slot reloads the model first.
 */
import { cpus } from "node:os";
import type { Readable } from "node:stream";
import { deflateSync } from "node:zlib";
import type { NativeModel, WhisperParams, WhisperResult, WhisperSegment } from "./addon.js";
import { openAudio } from "./audio.js";
import { loadIsolatedModel } from "./isolated.js";
import {
  chunkAudio,
  planChunks,
  regionSamples,
  sameUtterance,
  speechLevelled,
  type Chunk,
} from "./chunks.js";
import { SAMPLE_RATE, anySound, hasSound } from "./energy.js";
import { LANGUAGE_NAMES } from "./languages.js";
import type { ChunkResult, Progress, Segment, TranscribeOptions, Transcript, Word } from "./types.js";
import { packWindow, packedLength, toSource, type Span } from "./windows.js";

export interface EngineOptions {
  /** Use the CUDA build of whisper.cpp. @defaultValue false */
  gpu?: boolean;
  /** Threads per transcription. @defaultValue the host's cores divided among slots, at most 8 */
  threads?: number;
  /** Transcriptions that may run at once (one model copy each). @defaultValue 1 */
  slots?: number;
  /** A ggml Silero VAD model (ggml-silero-v6.2.0.bin): speech detection for long files. */
  vadModel?: string;
}

export interface TranscribeControl {
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
  /** Called when a slot is free and work begins (time before it was spent queued). */
  onStart?: () => void;
  /** Called as each VAD chunk is decoded: a checkpoint that a later attempt may `resume` from. */
  onChunk?: (chunk: ChunkResult) => void;
  /** Chunks decoded by an earlier attempt on the same audio, by start sample: taken instead of decoded. */
  resume?: ReadonlyMap<number, ChunkResult>;
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

const WINDOW_SAMPLES = 30 * SAMPLE_RATE;
/** How much decoded audio the reader yields at a time (cut at quiet points; any size would do). */
const READ_SECONDS = 30;
/** Whisper's repetition signal (its compression_ratio_threshold): text this repetitive is not carried on as a prompt. */
const LOOP_COMPRESSION_RATIO = 2.4;
/** Words further apart than this start a new segment when segments are rebuilt from word timings. */
const SEGMENT_GAP_SECONDS = 1;
/** Speech is detected over blocks of this much audio (memory stays flat; the VAD state restarts per block). */
const VAD_BLOCK_SAMPLES = 120 * SAMPLE_RATE;
/** Speech ending closer than this to a block's end may go on: it is looked at again with the next block. */
const VAD_TAIL_SAMPLES = 1 * SAMPLE_RATE;
/**
 * whisper.cpp's VAD parameters: Silero's 0.5 threshold; a pause must last 0.5 s to end a region; regions
 * padded by 0.3 s and at most 28 s long (so a padded region fits one window); blips under 0.25 s dropped.
 */
const VAD_PARAMS = {
  threshold: 0.5,
  minSpeechMs: 250,
  minSilenceMs: 500,
  maxSpeechSeconds: 28,
  speechPadMs: 300,
  // Silero's graph is tiny and runs once per 32 ms frame: a second thread only adds a barrier per
  // operation. plan() of the engine benchmark's 125.6 s file (decoding and VAD) took 0.65 s of wall and
  // CPU time on one thread, 2.0-2.5 s (2.2-2.7 s CPU) on two.
  threads: 1,
} as const;
const MAX_WORDS_PER_SEGMENT = 40;

export class WhisperEngine {
  private readonly idle: NativeModel[];
  private readonly waiting: Array<(m: NativeModel) => void> = [];
  private closed = false;

  private constructor(
    private readonly models: NativeModel[],
    private readonly threads: number,
    private readonly vadModel: string | undefined,
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
    return new WhisperEngine(models, threads, opts.vadModel);
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
    { signal, onProgress, onStart, onChunk, resume }: TranscribeControl = {},
  ): Promise<Transcript> {
    const params = this.compile(opts);
    return this.withModel(signal, onStart, async (d) => {
      const audio = await openAudio(input, { windowSeconds: READ_SECONDS, cutSearchSeconds: 5, signal });
      const reader = audio[Symbol.asyncIterator]();
      const segments: Omit<Segment, "id">[] = [];
      const lang = d.lang(params.language);
      /** Decoded audio not transcribed yet, starting at source sample `pendingStart`. */
      let pending: Int16Array = new Int16Array(0);
      let pendingStart = 0;
      let ended = false;
      const readUntil = async (samples: number) => {
        while (!ended && pending.length < samples) {
          const next = await reader.next();
          if (next.done) ended = true;
          else pending = concat(pending, next.value.samples);
        }
      };
      const report = (processed: number) =>
        onProgress?.({
          processedSeconds: processed,
          totalSeconds: Math.max(audio.durationSeconds ?? 0, processed),
        });

      await readUntil(WINDOW_SAMPLES + 1);
      const vad = this.wantsVad(opts, pending.length);

      const speech = { regions: 0, seconds: 0, chunks: 0, resumed: 0 };
      if (vad) {
        // Speech regions block by block; chunks of them decoded one by one, each on its own.
        for (;;) {
          await readUntil(VAD_BLOCK_SAMPLES);
          if (pending.length === 0) break;
          report(pendingStart / SAMPLE_RATE);
          const { chunks, keep } = await this.cutBlock(d, pending, ended, speech);
          for (const chunk of chunks) {
            const start = pendingStart + chunk.regions[0]![0];
            const end = pendingStart + chunk.regions[chunk.regions.length - 1]![1];
            const done = resume?.get(start);
            if (done?.end === end) {
              lang.value ||= done.language;
              segments.push(...done.segments);
              speech.resumed++;
            } else {
              const decoded = await this.decodeChunkWith(d, params, lang, pending, chunk, pendingStart);
              segments.push(...decoded);
              onChunk?.({ start, end, language: lang.value || "en", segments: decoded });
            }
            report(end / SAMPLE_RATE);
          }
          pending = pending.subarray(keep);
          pendingStart += keep;
        }
      } else {
        let condition = false;
        for (;;) {
          while (!ended && packedLength(pending, opts.packSilence ?? true) < WINDOW_SAMPLES)
            await readUntil(pending.length + 1);
          if (pending.length === 0) break;
          const window = packWindow(pending, WINDOW_SAMPLES, {
            final: ended,
            pack: opts.packSilence ?? true,
          });
          report(pendingStart / SAMPLE_RATE);
          let consumed = window.sourceLength;
          if (hasSound(window.samples)) {
            const result = await d.decode(params, lang, window.samples, {
              // The prompt starts the file; after that, the text decoded so far conditions each window.
              prompt: condition ? "" : params.prompt,
              noContext: !condition,
              maxPasses: 1,
            });
            const decoded = toSegments(result.segments, window.spans, pendingStart, params.maxLen === 1);
            segments.push(...decoded);
            condition = compressionRatio(decoded.map((s) => s.text).join("")) <= LOOP_COMPRESSION_RATIO;
            const consumedSamples = Math.round((result.consumedMs / 1000) * SAMPLE_RATE);
            // Whisper stopped at its last timestamp: the rest is transcribed from there in the next window.
            if (consumedSamples >= SAMPLE_RATE && consumedSamples < window.samples.length)
              consumed = Math.max(1, toSource(window.spans, consumedSamples, "start"));
          }
          pending = pending.subarray(consumed);
          pendingStart += consumed;
        }
      }
      const duration = pendingStart / SAMPLE_RATE;
      report(duration);
      return stitchTranscript(
        { duration, language: lang.value, languageProbability: lang.probability },
        segments,
        vad ? speech : undefined,
      );
    });
  }

  /**
   * Cuts a long file at speech for decoding elsewhere (chunks across instances): the whole audio as 16 kHz
   * PCM, and its chunks as they would be decoded here, with the language settled (detected on the first
   * chunk, as transcribe does). Undefined when the file is decoded in one piece (short, or VAD off).
   */
  async plan(
    input: string | Readable,
    opts: TranscribeOptions = {},
    { signal, onStart }: TranscribeControl = {},
  ): Promise<{ plan: SpeechPlan; pcm: Int16Array } | undefined> {
    const params = this.compile(opts);
    if (!this.wantsVad(opts, Infinity)) return undefined;
    return this.withModel(signal, onStart, async (d) => {
      const audio = await openAudio(input, { windowSeconds: READ_SECONDS, cutSearchSeconds: 5, signal });
      const blocks: Int16Array[] = [];
      let length = 0;
      for await (const w of audio) {
        blocks.push(w.samples);
        length += w.samples.length;
      }
      const pcm = new Int16Array(length);
      blocks.reduce((at, b) => (pcm.set(b, at), at + b.length), 0);
      if (!this.wantsVad(opts, pcm.length)) return undefined;
      const lang = d.lang(params.language);
      const speech = { regions: 0, seconds: 0, chunks: 0 };
      const chunks: Array<Array<[number, number]>> = [];
      for (let at = 0; at < pcm.length;) {
        const block = pcm.subarray(at, at + VAD_BLOCK_SAMPLES);
        const final = at + block.length >= pcm.length;
        const cut = await this.cutBlock(d, block, final, speech);
        for (const chunk of cut.chunks) {
          if (!lang.value) await d.detect(params, lang, chunkAudio(block, chunk).samples);
          chunks.push(chunk.regions.map(([a, b]) => [at + a, at + b]));
        }
        at += cut.keep;
      }
      const plan: SpeechPlan = {
        duration: pcm.length / SAMPLE_RATE,
        language: lang.value,
        ...(lang.probability !== undefined ? { languageProbability: lang.probability } : {}),
        regions: speech.regions,
        chunks,
      };
      return { plan, pcm };
    });
  }

  /**
   * Decodes one chunk of a plan: `pcm` is its regions' audio laid end to end, `regions` where they lie in
   * the file (so the segments come out in the file's time). The same as transcribe decodes that chunk.
   */
  async decodeChunk(
    pcm: Int16Array,
    regions: ReadonlyArray<[number, number]>,
    language: string,
    opts: TranscribeOptions = {},
    { signal, onStart }: TranscribeControl = {},
  ): Promise<ChunkResult> {
    const params = this.compile({ ...opts, language: language || opts.language });
    const local: Chunk = { regions: [] };
    let at = 0;
    for (const [a, b] of regions) {
      local.regions.push([at, at + b - a]);
      at += b - a;
    }
    if (at !== pcm.length)
      throw new InvalidOptionError("regions", `cover ${at} samples but the chunk's audio has ${pcm.length}`);
    return this.withModel(signal, onStart, async (d) => {
      const lang = d.lang(params.language);
      const segments = await this.decodeChunkWith(d, params, lang, pcm, local, 0, regions);
      return {
        start: regions[0]?.[0] ?? 0,
        end: regions[regions.length - 1]?.[1] ?? 0,
        language: lang.value || "en",
        segments,
      };
    });
  }

  /** Releases the models; transcriptions still waiting for a slot are rejected. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.models.map((m) => m.release()));
  }

  private compile(opts: TranscribeOptions): WhisperParams {
    const params = compileParams(opts, this.threads);
    if (!this.models[0]!.multilingual && params.language !== "auto" && params.language !== "en") {
      throw new InvalidOptionError(
        "language",
        `the model is English-only and cannot transcribe "${params.language}"`,
      );
    }
    return params;
  }

  private wantsVad(opts: TranscribeOptions, samplesRead: number): boolean {
    const vad = opts.vad ?? (this.vadModel !== undefined && samplesRead > WINDOW_SAMPLES);
    if (vad && this.vadModel === undefined)
      throw new InvalidOptionError(
        "vad",
        "this server has no VAD model (kikitori models pull silero-v6.2.0)",
      );
    return vad;
  }

  /**
   * One block of audio cut at speech: its chunks (block sample ranges) and how much of the block they
   * account for; speech running into the end of a block that is not the last may go on in the next one, so
   * it is left for that block.
   */
  private async cutBlock(
    d: Decoder,
    block: Int16Array,
    final: boolean,
    speech: { regions: number; seconds: number; chunks: number },
  ): Promise<{ chunks: Chunk[]; keep: number }> {
    const found = anySound(block)
      ? await d.native(d.model.speech(speechLevelled(block), { model: this.vadModel!, ...VAD_PARAMS }))
      : [];
    const regions = regionSamples(block, found);
    let keep = block.length;
    const last = regions[regions.length - 1];
    if (!final && last && last[0] > 0 && block.length - last[1] < VAD_TAIL_SAMPLES) {
      // The whole utterance that runs into the block's end waits for the next block (the regions of one
      // utterance, up to a window's length): left behind, its first words would be a
      // chunk of their own, decoded without the rest of the sentence.
      let first = regions.length - 1;
      while (
        first > 0 &&
        sameUtterance(regions[first - 1]!, regions[first]!) &&
        block.length - regions[first - 1]![0] <= WINDOW_SAMPLES &&
        regions[first - 1]![0] > 0
      )
        first--;
      keep = regions[first]![0];
      regions.splice(first);
    }
    speech.regions += regions.length;
    speech.seconds += regions.reduce((n, [a, b]) => n + b - a, 0) / SAMPLE_RATE;
    const chunks = planChunks(regions);
    speech.chunks += chunks.length;
    return { chunks, keep };
  }

  /**
   * One chunk of `pcm` decoded on its own; segments in source time (`pcmStart` + position, or `placed`
   * regions). Whisper sometimes ends a window early: an end-of-text after the first utterances, and the rest
   * of the window counts as consumed (tiny.en does so after a change of voice or channel, and drops whole
   * regions). VAD found speech in every region, so the regions that start after the last decoded text are
   * decoded again on their own, as a chunk of their own (the same chunk still gives the same segments).
   */
  private async decodeChunkWith(
    d: Decoder,
    params: WhisperParams,
    lang: Language,
    pcm: Int16Array,
    chunk: Chunk,
    pcmStart: number,
    placed?: ReadonlyArray<readonly [number, number]>,
  ): Promise<Omit<Segment, "id">[]> {
    const segments: Omit<Segment, "id">[] = [];
    for (let from = 0; from < chunk.regions.length;) {
      const { samples, spans } = chunkAudio(pcm, { regions: chunk.regions.slice(from) });
      const result = await d.decode(params, lang, samples, {
        prompt: params.prompt,
        noContext: true,
        maxPasses: 0,
      });
      const inSource = placed ? spans.map((s, i) => ({ ...s, source: placed[from + i]![0] })) : spans;
      segments.push(...toSegments(result.segments, inSource, pcmStart, params.maxLen === 1));
      const textEnd = result.segments.reduce((t, s) => (s.text.trim() ? Math.max(t, s.t1) : t), 0);
      const next = spans.findIndex((s) => s.packed >= (textEnd / 1000) * SAMPLE_RATE);
      // -1: text up to the last region; 0: no text at all (the same audio again would give the same).
      if (next <= 0) break;
      from += next;
    }
    return segments;
  }

  /** Runs `fn` on a free model (waiting for one), with a decoder bound to it and the signal. */
  private async withModel<T>(
    signal: AbortSignal | undefined,
    onStart: (() => void) | undefined,
    fn: (d: Decoder) => Promise<T>,
  ): Promise<T> {
    const model = await this.acquire(signal);
    onStart?.();
    const d = new Decoder(model, signal);
    try {
      return await fn(d);
    } finally {
      // Until the native run in flight settles (at once when stopped), the context is busy.
      if (d.inFlight) void d.inFlight.then(() => this.release(model));
      else this.release(model);
    }
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

/** The native parameters; validation of user input happens at the front doors. */
function compileParams(opts: TranscribeOptions, defaultThreads: number): WhisperParams {
  if (opts.language && opts.language !== "auto" && !(opts.language in LANGUAGE_NAMES)) {
    throw new InvalidOptionError("language", `"${opts.language}" is not a language whisper knows`);
  }
  const fixedTemperature = opts.temperature !== undefined && opts.temperature > 0;
  return {
    language: opts.language ?? "auto",
    translate: opts.translate ?? false,
    threads: opts.threads ?? defaultThreads,
    prompt: opts.prompt ?? "",
    temperature: opts.temperature ?? 0,
    // Like OpenAI's API: temperature 0 means "start greedy, fall back hotter"; a set temperature is kept.
    temperatureInc: fixedTemperature ? 0 : 0.2,
    // Whisper's fallback and no-speech rules, at its reference values.
    entropyThold: 2.4,
    logprobThold: -1,
    noSpeechThold: 0.6,
    beamSize: opts.beamSize ?? 1,
    bestOf: 5,
    tokenTimestamps: opts.wordTimestamps ?? false,
    maxLen: opts.wordTimestamps ? 1 : 0,
    // Not suppressed while decoding: on tiny.en that made whisper skip quoted sentences (quotes are
    // "non-speech" tokens); annotation-only segments are dropped after decoding instead.
    suppressNonSpeech: false,
  };
}

function concat(a: Int16Array, b: Int16Array): Int16Array {
  if (a.length === 0) return b;
  const out = new Int16Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** A long file cut at speech (POST /kikitori/plan): chunks of source sample ranges, decoded anywhere. */
export interface SpeechPlan {
  duration: number;
  /** The language every chunk is decoded in ("" when none could be settled: each chunk detects its own). */
  language: string;
  languageProbability?: number;
  /** Speech regions found. */
  regions: number;
  chunks: Array<Array<[number, number]>>;
}

/** The language of one transcription: fixed, or settled by the first detection. */
interface Language {
  value: string;
  probability?: number;
}

/** Native runs on one acquired model, stopped by the signal, with Whisper's fallback on loops. */
class Decoder {
  /** The native run in flight (the context is busy until it settles). */
  inFlight: Promise<unknown> | undefined;

  constructor(
    readonly model: NativeModel,
    private readonly signal: AbortSignal | undefined,
  ) {}

  lang(requested: string): Language {
    return { value: !this.model.multilingual ? "en" : requested === "auto" ? "" : requested };
  }

  async native<T>(run: { stop(): void; result: Promise<T> }): Promise<T> {
    this.inFlight = run.result.catch(() => undefined);
    const result = await abortable(run.result, this.signal, run.stop);
    this.inFlight = undefined;
    return result;
  }

  async detect(params: WhisperParams, lang: Language, samples: Int16Array): Promise<void> {
    const detected = await this.native(this.model.detectLanguage(samples, params.threads));
    if (detected) {
      lang.value = detected.language;
      lang.probability = detected.probabilities[lang.value];
    }
  }

  /** Decodes one window, detecting the language first when it is not settled. */
  async decode(
    params: WhisperParams,
    lang: Language,
    samples: Int16Array,
    extra: Partial<WhisperParams>,
  ): Promise<WhisperResult> {
    if (!lang.value) await this.detect(params, lang, samples);
    const run = (temperature: number) =>
      this.native(
        this.model.transcribe(samples, { ...params, language: lang.value || "auto", ...extra, temperature }),
      );
    let result = await run(params.temperature ?? 0);
    // whisper.cpp falls back to hotter sampling on low log-probability and on low token entropy; the
    // reference decoder also on a compression ratio above 2.4 (a loop), which is checked here.
    let t = params.temperature ?? 0;
    while (params.temperatureInc! > 0 && t < 1 && compressionRatio(textOf(result)) > LOOP_COMPRESSION_RATIO) {
      t = Math.min(1, t + params.temperatureInc!);
      const hotter = await run(t);
      if (compressionRatio(textOf(hotter)) < compressionRatio(textOf(result))) result = hotter;
    }
    lang.value ||= result.language;
    return result;
  }
}

/**
 * The transcript of segments in file order (from one engine, or from a plan's chunks decoded anywhere):
 * ids from 0, times monotonic and within the duration.
 */
export function stitchTranscript(
  meta: { duration: number; language: string; languageProbability?: number },
  segments: Omit<Segment, "id">[],
  speech?: Transcript["speech"],
): Transcript {
  return {
    text: segments
      .map((s) => s.text)
      .join("")
      .trim(),
    language: meta.language || "en",
    ...(meta.languageProbability !== undefined ? { languageProbability: meta.languageProbability } : {}),
    duration: meta.duration,
    segments: monotonic(segments, meta.duration).map((s, id) => ({ id, ...s })),
    ...(speech ? { speech } : {}),
  };
}

const textOf = (r: WhisperResult) => r.segments.map((s) => s.text).join("");

/** Segments in time order whatever their windows said: starts never go back, and everything lies within the audio. */
function monotonic(segments: Omit<Segment, "id">[], duration: number): Omit<Segment, "id">[] {
  let floor = 0;
  return segments.map((s) => {
    const start = Math.min(duration, Math.max(floor, s.start));
    const end = Math.min(duration, Math.max(start, s.end));
    floor = start;
    return { ...s, start, end };
  });
}

/** Whisper's repetition signal: text bytes over zlib-compressed bytes (2.4 and above: a loop). */
export function compressionRatio(text: string): number {
  const bytes = Buffer.from(text, "utf8");
  return bytes.length === 0 ? 0 : bytes.length / deflateSync(bytes).length;
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

/** Window segments → segments in source seconds (words regrouped into segments when asked). */
function toSegments(
  native: WhisperSegment[],
  spans: readonly Span[],
  sourceStart: number,
  perToken: boolean,
): Omit<Segment, "id">[] {
  const at = (ms: number, edge: "start" | "end") =>
    (sourceStart + toSource(spans, Math.max(0, (ms / 1000) * SAMPLE_RATE), edge)) / SAMPLE_RATE;
  // Per-token segments are single tokens ("." continues a word), so only whole annotations are dropped there.
  const kept = native.filter(
    (s) => s.text.trim() !== "" && !(perToken ? BLANK_AUDIO.test(s.text) : isAnnotationOnly(s.text)),
  );
  if (!perToken)
    return kept.map((s) => {
      const text = s.tokens.filter((t) => t.text !== "");
      const start = at(s.t0, "start");
      return {
        start,
        end: Math.max(start, at(s.t1, "end")),
        text: s.text,
        tokens: s.tokens.map((t) => t.id),
        avgLogprob: text.length ? text.reduce((sum, t) => sum + t.logprob, 0) / text.length : 0,
        noSpeechProb: s.noSpeechProb,
        compressionRatio: compressionRatio(s.text),
      };
    });

  // One native segment per token: a token not starting with a space continues the previous word.
  const words: Word[] = [];
  for (const t of kept) {
    const last = words[words.length - 1];
    if (last && !/^\s/.test(t.text)) {
      last.word += t.text;
      last.end = Math.max(last.end, at(t.t1, "end"));
    } else {
      const start = at(t.t0, "start");
      words.push({ word: t.text.trim(), start, end: Math.max(start, at(t.t1, "end")) });
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
