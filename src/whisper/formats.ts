/** Renders a Transcript in each output format, like whisper's writers and OpenAI's response_format. */
import { deflateSync } from "node:zlib";
import { LANGUAGE_NAMES } from "./languages.js";
import type { OutputFormat, Segment, Transcript } from "./types.js";

export const CONTENT_TYPES: Readonly<Record<OutputFormat, string>> = {
  json: "application/json",
  verbose_json: "application/json",
  text: "text/plain; charset=utf-8",
  srt: "application/x-subrip; charset=utf-8",
  vtt: "text/vtt; charset=utf-8",
  tsv: "text/tab-separated-values; charset=utf-8",
};

const ACCEPTED: ReadonlyArray<[string, OutputFormat]> = [
  ["application/json", "json"],
  ["text/plain", "text"],
  ["application/x-subrip", "srt"],
  ["text/srt", "srt"],
  ["text/vtt", "vtt"],
  ["text/tab-separated-values", "tsv"],
];

/**
 * The format an Accept header asks for, honouring q-values; undefined when it names none we render
 * (including a bare wildcard), so the caller picks its default.
 */
export function formatFromAccept(accept: string | undefined): OutputFormat | undefined {
  if (!accept) return undefined;
  let best: { format: OutputFormat; q: number } | undefined;
  for (const part of accept.split(",")) {
    const [type = "", ...params] = part.split(";").map((s) => s.trim().toLowerCase());
    const qParam = params.find((p) => p.startsWith("q="));
    const q = qParam ? Number.parseFloat(qParam.slice(2)) : 1;
    const format = ACCEPTED.find(([t]) => t === type)?.[1];
    if (format && Number.isFinite(q) && q > 0 && (!best || q > best.q)) best = { format, q };
  }
  return best?.format;
}

export interface RenderOptions {
  /** verbose_json reports the task. @defaultValue "transcribe" */
  task?: "transcribe" | "translate";
}

export function renderTranscript(t: Transcript, format: OutputFormat, opts: RenderOptions = {}): string {
  switch (format) {
    case "json":
      return JSON.stringify({
        text: t.text,
        language: t.language,
        duration: t.duration,
        segments: t.segments.map((s) => ({
          id: s.id,
          start: s.start,
          end: s.end,
          text: s.text,
          ...(s.words ? { words: s.words } : {}),
        })),
      });
    case "verbose_json":
      return renderVerboseJson(t, opts.task ?? "transcribe");
    case "text":
      return t.text.length > 0 ? `${t.text}\n` : "";
    case "srt":
      return cues(t.segments)
        .map((c, i) => `${i + 1}\n${timestamp(c.start, ",")} --> ${timestamp(c.end, ",")}\n${c.text}\n`)
        .join("\n");
    case "vtt":
      return (
        "WEBVTT\n\n" +
        cues(t.segments)
          .map((c) => `${timestamp(c.start, ".")} --> ${timestamp(c.end, ".")}\n${c.text}\n`)
          .join("\n")
      );
    case "tsv":
      return (
        "start\tend\ttext\n" +
        cues(t.segments)
          .map((c) => `${Math.round(c.start * 1000)}\t${Math.round(c.end * 1000)}\t${c.text}\n`)
          .join("")
      );
  }
}

/** HH:MM:SS,mmm (SRT) or HH:MM:SS.mmm (WebVTT). */
export function timestamp(seconds: number, decimalMark: "," | "."): string {
  const ms = Math.max(0, Math.round(seconds * 1000));
  const pad = (n: number, w = 2) => String(n).padStart(w, "0");
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor(ms / 60_000) % 60;
  const s = Math.floor(ms / 1000) % 60;
  return `${pad(h)}:${pad(m)}:${pad(s)}${decimalMark}${pad(ms % 1000, 3)}`;
}

/**
 * Cue text on one line (a newline would end an SRT/VTT cue, a tab a TSV field), times never running
 * backwards, and no empty cues.
 */
function cues(segments: Segment[]): { start: number; end: number; text: string }[] {
  const out: { start: number; end: number; text: string }[] = [];
  let floor = 0;
  for (const s of segments) {
    const text = s.text.replace(/\s+/g, " ").trim();
    if (!text) continue;
    const start = Math.max(s.start, floor);
    const end = Math.max(s.end, start);
    out.push({ start, end, text: text.replace(/-->/g, "->") });
    floor = start;
  }
  return out;
}

function renderVerboseJson(t: Transcript, task: "transcribe" | "translate"): string {
  const words = t.segments.some((s) => s.words) ? t.segments.flatMap((s) => s.words ?? []) : undefined;
  return JSON.stringify({
    task,
    language: LANGUAGE_NAMES[t.language] ?? t.language,
    duration: t.duration,
    text: t.text,
    segments: t.segments.map((s) => ({
      id: s.id,
      // Whisper's seek is the 10 ms frame its 30 s window started at; the segment start is our nearest value.
      seek: Math.floor(s.start * 100),
      start: s.start,
      end: s.end,
      text: s.text,
      // whisper.cpp's addon does not return token ids, log-probabilities or no-speech probabilities;
      // these fields keep OpenAI clients' schemas satisfied with neutral values.
      tokens: [],
      temperature: 0,
      avg_logprob: 0,
      compression_ratio: compressionRatio(s.text),
      no_speech_prob: 0,
    })),
    ...(words ? { words } : {}),
  });
}

/** Whisper's repetition signal: text bytes over zlib-compressed bytes. */
function compressionRatio(text: string): number {
  const bytes = Buffer.from(text, "utf8");
  if (bytes.length === 0) return 0;
  return Math.round((bytes.length / deflateSync(bytes).length) * 1000) / 1000;
}
