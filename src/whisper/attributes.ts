/**
 * Transcription options from SageMaker's X-Amzn-SageMaker-Custom-Attributes header: comma-separated
 * key=value pairs, values URL-encoded where they may hold commas (the prompt).
 */
import { InvalidOptionError } from "./engine.js";
import { LANGUAGE_NAMES } from "./languages.js";
import { OUTPUT_FORMATS, type OutputFormat, type TranscribeOptions } from "./types.js";

export interface InvocationOptions {
  transcribe: TranscribeOptions;
  /** Undefined when the attributes do not say; the Accept header decides then. */
  format?: OutputFormat;
}

const KEYS = [
  "language",
  "task",
  "prompt",
  "temperature",
  "beam_size",
  "word_timestamps",
  "vad",
  "format",
] as const;
type Key = (typeof KEYS)[number];

const CODE_BY_NAME = new Map(Object.entries(LANGUAGE_NAMES).map(([code, name]) => [name, code]));

/** Throws InvalidOptionError naming the attribute on any unknown key or bad value. */
export function parseCustomAttributes(header: string | undefined): InvocationOptions {
  const out: InvocationOptions = { transcribe: {} };
  if (!header?.trim()) return out;
  const seen = new Set<string>();
  for (const pair of header.split(",")) {
    if (!pair.trim()) continue;
    const eq = pair.indexOf("=");
    const key = (eq < 0 ? pair : pair.slice(0, eq)).trim().toLowerCase();
    if (!(KEYS as readonly string[]).includes(key)) {
      throw new InvalidOptionError(key, `unknown custom attribute (known: ${KEYS.join(", ")})`);
    }
    if (eq < 0) throw new InvalidOptionError(key, "expected key=value");
    if (seen.has(key)) throw new InvalidOptionError(key, "given more than once");
    seen.add(key);
    let value: string;
    try {
      value = decodeURIComponent(pair.slice(eq + 1).trim());
    } catch {
      throw new InvalidOptionError(key, "value is not valid URL encoding");
    }
    apply(out, key as Key, value);
  }
  return out;
}

function apply(out: InvocationOptions, key: Key, value: string): void {
  const t = out.transcribe;
  switch (key) {
    case "language": {
      const v = value.toLowerCase();
      const code = v === "auto" || v in LANGUAGE_NAMES ? v : CODE_BY_NAME.get(v);
      if (!code)
        throw new InvalidOptionError(
          key,
          `"${value}" is not a language whisper knows (use e.g. en, ja, auto)`,
        );
      t.language = code;
      return;
    }
    case "task":
      if (value !== "transcribe" && value !== "translate") {
        throw new InvalidOptionError(key, `must be transcribe or translate, got "${value}"`);
      }
      t.translate = value === "translate";
      return;
    case "prompt":
      t.prompt = value;
      return;
    case "temperature": {
      const n = Number(value);
      if (value === "" || !Number.isFinite(n) || n < 0 || n > 1) {
        throw new InvalidOptionError(key, `must be a number from 0 to 1, got "${value}"`);
      }
      t.temperature = n;
      return;
    }
    case "beam_size": {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 1 || n > 16) {
        throw new InvalidOptionError(key, `must be an integer from 1 to 16, got "${value}"`);
      }
      t.beamSize = n;
      return;
    }
    case "word_timestamps":
      t.wordTimestamps = boolean(key, value);
      return;
    case "vad":
      t.vad = boolean(key, value);
      return;
    case "format":
      if (!(OUTPUT_FORMATS as readonly string[]).includes(value)) {
        throw new InvalidOptionError(key, `must be one of ${OUTPUT_FORMATS.join(", ")}, got "${value}"`);
      }
      out.format = value as OutputFormat;
      return;
  }
}

function boolean(key: Key, value: string): boolean {
  if (value !== "true" && value !== "false") {
    throw new InvalidOptionError(key, `must be true or false, got "${value}"`);
  }
  return value === "true";
}
