import { validation } from "../../errors.js";
import { OUTPUT_FORMATS, type OutputFormat } from "../../whisper/types.js";

/** Transcription options of the native API, carried to the model server as SageMaker custom attributes. */
export interface TranscriptionOptions {
  language?: string;
  task?: "transcribe" | "translate";
  prompt?: string;
  temperature?: number;
  beamSize?: number;
  wordTimestamps?: boolean;
  /** Cut at speech (Silero VAD); default on for audio over 30 s. */
  vad?: boolean;
  format?: OutputFormat;
}

/** Encodes options as `X-Amzn-SageMaker-Custom-Attributes` (`key=value` pairs, comma-separated). */
export function toCustomAttributes(o: TranscriptionOptions): string | undefined {
  const parts: string[] = [];
  if (o.language) parts.push(`language=${encodeURIComponent(o.language)}`);
  if (o.task) parts.push(`task=${o.task}`);
  if (o.prompt) parts.push(`prompt=${encodeURIComponent(o.prompt)}`);
  if (o.temperature !== undefined) parts.push(`temperature=${o.temperature}`);
  if (o.beamSize !== undefined) parts.push(`beam_size=${o.beamSize}`);
  if (o.wordTimestamps) parts.push("word_timestamps=true");
  if (o.vad !== undefined) parts.push(`vad=${o.vad}`);
  if (o.format) {
    if (!OUTPUT_FORMATS.includes(o.format))
      throw validation("options.format", `must be one of ${OUTPUT_FORMATS.join(", ")}`);
    parts.push(`format=${o.format}`);
  }
  const s = parts.join(",");
  if (s.length > 1024)
    throw validation("options", "encode to more than 1024 characters of custom attributes");
  return s || undefined;
}
