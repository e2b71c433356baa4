/** Options for one transcription (the native API, OpenAI API and custom attributes all map onto these). */
export interface TranscribeOptions {
  /** ISO 639-1 code ("en", "ja") or undefined/"auto" to detect. */
  language?: string;
  /** Translate to English instead of transcribing. */
  translate?: boolean;
  /** Initial prompt (vocabulary, style). */
  prompt?: string;
  /** Sampling temperature; 0 = greedy. */
  temperature?: number;
  /** Beam search width; undefined or 1 = greedy. */
  beamSize?: number;
  /** Emit per-word timings. */
  wordTimestamps?: boolean;
  /** Threads for the engine (default: the host's cores, at most 8). */
  threads?: number;
  /** Shorten silences longer than 0.6 s before windowing (fewer 30 s encoder passes; without VAD). @defaultValue true */
  packSilence?: boolean;
  /**
   * Cut the audio at speech found by Silero VAD, and decode it as independent ≤ 30 s chunks (silence
   * skipped). Default: on for audio longer than 30 s when the engine has a VAD model.
   */
  vad?: boolean;
}

export interface Word {
  start: number;
  end: number;
  word: string;
}

export interface Segment {
  id: number;
  /** Seconds from the start of the audio. */
  start: number;
  end: number;
  text: string;
  words?: Word[];
  /** Whisper's token ids (text and timestamps), as in OpenAI's verbose_json. */
  tokens?: number[];
  /** Mean log-probability of the segment's text tokens. */
  avgLogprob?: number;
  /** Probability that the window held no speech. */
  noSpeechProb?: number;
  /** Text bytes over zlib-compressed bytes (above 2.4: a repetition loop). */
  compressionRatio?: number;
}

/** The engine's result, from which every output format is rendered. */
export interface Transcript {
  text: string;
  language: string;
  /** Probability of `language` when it was detected (multilingual models). */
  languageProbability?: number;
  /** Audio duration in seconds. */
  duration: number;
  segments: Segment[];
  /** When the audio was cut at speech (VAD): how much speech was found, in how many chunks (one encoder pass or more each). */
  speech?: {
    regions: number;
    seconds: number;
    chunks: number;
    /** Of those chunks, how many were taken from a checkpoint (an earlier attempt) instead of decoded. */
    resumed?: number;
  };
}

/**
 * A decoded chunk of a VAD-cut transcription, as checkpointed: the chunk is named by its first sample in
 * the source (16 kHz), which the same audio always cuts the same way, and taken only where it also ends
 * where it did; segments in the source's time.
 */
export interface ChunkResult {
  start: number;
  end: number;
  language: string;
  segments: Omit<Segment, "id">[];
}

/** Progress of one transcription, in audio seconds. */
export interface Progress {
  processedSeconds: number;
  totalSeconds: number;
}

export type OutputFormat = "json" | "text" | "srt" | "vtt" | "tsv" | "verbose_json";
export const OUTPUT_FORMATS: readonly OutputFormat[] = ["json", "text", "srt", "vtt", "tsv", "verbose_json"];
