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
}

/** The engine's result, from which every output format is rendered. */
export interface Transcript {
  text: string;
  language: string;
  /** Audio duration in seconds. */
  duration: number;
  segments: Segment[];
}

/** Progress of one transcription, in audio seconds. */
export interface Progress {
  processedSeconds: number;
  totalSeconds: number;
}

export type OutputFormat = "json" | "text" | "srt" | "vtt" | "tsv" | "verbose_json";
export const OUTPUT_FORMATS: readonly OutputFormat[] = ["json", "text", "srt", "vtt", "tsv", "verbose_json"];
