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
        ...languageProbability(t),
        duration: t.duration,
        segments: t.segments.map((s) => ({
          id: s.id,
          start: s.start,
          end: s.end,
          text: s.text,
          ...(s.words ? { words: s.words } : {}),
        })),
        // With VAD: speech found, chunks, and how many of them a checkpoint of an earlier attempt gave.
        ...(t.speech ? { speech: t.speech } : {}),
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
 * backwards, and no empty cues. A segment too long to read as one subtitle is split into several cues at
 * the best places (see splitCueText), each timed from its words when the segment has word timings, else
 * in proportion to its characters.
 */
function cues(segments: Segment[]): { start: number; end: number; text: string }[] {
  const out: { start: number; end: number; text: string }[] = [];
  let floor = 0;
  for (const s of segments) {
    const text = s.text.replace(/\s+/g, " ").trim();
    if (!text) continue;
    const pieces = splitCueText(text);
    const times = pieceTimes(s, pieces);
    pieces.forEach((piece, i) => {
      const start = Math.max(times[i]!, floor);
      const end = Math.max(i === pieces.length - 1 ? s.end : times[i + 1]!, start);
      out.push({ start, end, text: piece.replace(/-->/g, "->") });
      floor = start;
    });
  }
  return out;
}

/** Longest cue in display columns (a wide CJK character counts two): two subtitle lines of 42. */
export const MAX_CUE_COLUMNS = 84;

const GRAPHEMES = new Intl.Segmenter(undefined, { granularity: "grapheme" });
/** East Asian wide and full-width characters (Unicode's EastAsianWidth W and F, the common blocks). */
const WIDE =
  /[\u1100-\u115f\u2e80-\u303e\u3041-\u33ff\u3400-\u4dbf\u4e00-\u9fff\ua000-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6\u{20000}-\u{3fffd}]/u;
const SENTENCE_END = /^[。．！？!?…]$/u;
const CLAUSE_END = /^[、，,;；：:]$/u;
/** Not at the start of a line (Japanese kinsoku shori, and Western closing punctuation). */
const NO_LINE_START =
  /^[、。，．・：；？！ー～）」』】〕〉》｝ぁぃぅぇぉっゃゅょゎゕゖァィゥェォッャュョヮヵヶ,.!?;:)\]}%’”]/u;
/** Not at the end of a line: opening brackets and quotes. */
const NO_LINE_END = /^[（「『【〔〈《｛([{‘“]$/u;
/** Letters and digits of scripts that separate words with spaces: never cut between two of them. */
const SPACED_LETTER = /^[\p{L}\p{N}\p{M}'’-]+$/u;

const columns = (g: string) => (WIDE.test(g) ? 2 : 1);

/**
 * Splits cue text longer than `maxColumns` into pieces of at most that width, without ever breaking a
 * character (it works on grapheme clusters, so multi-byte and combined characters stay whole) or a
 * space-separated word. Each cut goes to the best place within the piece: after a sentence end
 * (。！？.!?), else after a clause mark (、，,;:), else at a space, else between two CJK characters where
 * Japanese line-breaking rules allow it (no small kana, prolonged-sound mark or closing punctuation at
 * the start of a piece, no opening bracket at its end). Pieces shorter than a third of the width are
 * avoided where a later cut exists.
 */
export function splitCueText(text: string, maxColumns = MAX_CUE_COLUMNS): string[] {
  let g = Array.from(GRAPHEMES.segment(text), (x) => x.segment);
  const pieces: string[] = [];
  for (;;) {
    let width = 0;
    let fit = 0; // graphemes that fit
    while (fit < g.length && width + columns(g[fit]!) <= maxColumns) width += columns(g[fit++]!);
    if (fit === g.length) break;
    let best = -1;
    let bestScore = -1;
    let seen = 0;
    for (let i = 1; i <= fit; i++) {
      seen += columns(g[i - 1]!);
      const score = cutScore(g[i - 1]!, g[i]!);
      if (score < 0) continue;
      // Later cuts win ties; a short first piece only wins with a strictly better kind of cut.
      const adjusted = seen * 3 < maxColumns ? score - 4 : score;
      if (adjusted >= bestScore) {
        best = i;
        bestScore = adjusted;
      }
    }
    if (best < 0) best = Math.max(1, fit); // one unbreakable run longer than a cue: cut it where it overflows
    pieces.push(g.slice(0, best).join("").trim());
    g = g.slice(best);
    while (g.length && /^\s$/u.test(g[0]!)) g.shift();
  }
  const rest = g.join("").trim();
  if (rest) pieces.push(rest);
  return pieces.filter((p) => p !== "");
}

/** How good a cut between graphemes `a` and `b` is: 3 sentence end, 2 clause, 1 space, 0 allowed, -1 never. */
function cutScore(a: string, b: string): number {
  if (NO_LINE_START.test(b) || NO_LINE_END.test(a)) return -1;
  if (SENTENCE_END.test(a) || (a === "." && /^\s$/u.test(b))) return 3;
  if (CLAUSE_END.test(a)) return 2;
  if (/^\s$/u.test(a) || /^\s$/u.test(b)) return 1;
  if (SPACED_LETTER.test(a) && SPACED_LETTER.test(b) && !WIDE.test(a) && !WIDE.test(b)) return -1;
  return 0;
}

/** Start time of each piece of segment `s`: from its words when they spell the text, else by characters. */
function pieceTimes(s: Segment, pieces: string[]): number[] {
  const letters = (t: string) => t.replace(/\s+/gu, "");
  const lengths = pieces.map((p) => [...letters(p)].length);
  const total = lengths.reduce((a, b) => a + b, 0);
  const words = s.words ?? [];
  const spelled = words.length > 0 && letters(words.map((w) => w.word).join("")) === letters(pieces.join(""));
  const starts: number[] = [];
  let done = 0;
  for (const n of lengths) {
    if (spelled) {
      // The first word that reaches past the characters already placed starts this piece.
      let chars = 0;
      const w = words.find((word) => (chars += [...letters(word.word)].length) > done) ?? words.at(-1)!;
      starts.push(starts.length === 0 ? s.start : w.start);
    } else starts.push(s.start + (total ? (done / total) * (s.end - s.start) : 0));
    done += n;
  }
  return starts;
}

/** `language_probability` where the language was detected (a given language has none). */
const languageProbability = (t: Transcript) =>
  t.languageProbability === undefined
    ? {}
    : { language_probability: Math.round(t.languageProbability * 10_000) / 10_000 };

/**
 * What the model server returns in `X-Amzn-SageMaker-Custom-Attributes` (SageMaker passes a container's to the
 * caller of InvokeEndpoint as `CustomAttributes`): the language, and its probability where it was detected.
 */
export function resultAttributes(t: Transcript): string {
  const p = languageProbability(t).language_probability;
  return `language=${t.language}${p === undefined ? "" : `,language_probability=${p}`}`;
}

function renderVerboseJson(t: Transcript, task: "transcribe" | "translate"): string {
  const words = t.segments.some((s) => s.words) ? t.segments.flatMap((s) => s.words ?? []) : undefined;
  return JSON.stringify({
    task,
    language: LANGUAGE_NAMES[t.language] ?? t.language,
    ...languageProbability(t),
    duration: t.duration,
    text: t.text,
    segments: t.segments.map((s) => ({
      id: s.id,
      // Whisper's seek is the 10 ms frame its 30 s window started at; the segment start is our nearest value.
      seek: Math.floor(s.start * 100),
      start: s.start,
      end: s.end,
      text: s.text,
      // The GPU addon returns no tokens or probabilities: neutral values keep OpenAI clients' schemas.
      tokens: s.tokens ?? [],
      temperature: 0,
      avg_logprob: s.avgLogprob ?? 0,
      compression_ratio: s.compressionRatio ?? compressionRatio(s.text),
      no_speech_prob: s.noSpeechProb ?? 0,
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
