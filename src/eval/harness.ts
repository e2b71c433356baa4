/**
 * The quality harness: transcribe every clip of a manifest, score it against its reference, and
 * sum the edits per language. English is scored by word (Whisper's English normaliser), Chinese,
 * Japanese and Korean by character (see normalizeCjk), other languages by word after Whisper's
 * basic normaliser.
 *
 * Manifest: a JSON array like testdata/speech/manifest.json; each entry needs `file`,
 * `transcript_file` (both relative to the manifest) and `language`. `exact_reference: false` marks
 * a model-made reference, which is skipped (it cannot measure errors). A multi-channel clip whose
 * reference has one line per channel is scored channel by channel, since a mono mixdown of two
 * speakers talking over each other has no single right transcript.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { promisify } from "node:util";
import { cjkCharacterErrors, type EditCounts, errorRate, sumCounts, wordErrors } from "./metrics.js";
import { BasicTextNormalizer } from "./normalize.js";

export interface ManifestEntry {
  /** Audio path as written in the manifest. */
  file: string;
  /** Absolute audio path. */
  audioPath: string;
  /** Absolute reference transcript path. */
  transcriptPath: string;
  /** ISO 639-1 code, or a mix such as "en+de". */
  language: string;
  /** False when the reference is another model's output rather than a human's. */
  exactReference: boolean;
  channels?: number;
  durationSeconds?: number;
}

export type TranscribeFn = (audioPath: string, opts: { language?: string }) => Promise<string>;

export type Metric = "wer" | "cer";

export interface ClipResult {
  /** The manifest's file name; "#chN" is appended for one channel of a multi-channel clip. */
  clip: string;
  language: string;
  metric: Metric;
  reference: string;
  hypothesis: string;
  counts: EditCounts;
  rate: number;
  /** Seconds spent in the transcribe function. */
  wallSeconds: number;
}

export interface SkippedClip {
  clip: string;
  reason: string;
}

export interface FailedClip {
  clip: string;
  error: string;
}

export interface LanguageSummary {
  language: string;
  metric: Metric;
  clips: number;
  counts: EditCounts;
  /** Total edits / total reference tokens over the language's clips. */
  rate: number;
  wallSeconds: number;
}

export interface EvalReport {
  clips: ClipResult[];
  skipped: SkippedClip[];
  failed: FailedClip[];
  languages: LanguageSummary[];
}

export interface EvaluateOptions {
  /** Only clips in this language (e.g. "en"). */
  languageFilter?: string;
  /** Called after each clip, for progress output. */
  onClip?: (result: ClipResult | SkippedClip | FailedClip) => void;
}

const CJK_LANGUAGES = new Set(["ja", "zh", "ko", "yue"]);

/** The metric a language is scored with. */
export function metricFor(language: string): Metric {
  return CJK_LANGUAGES.has(language) ? "cer" : "wer";
}

const basic = new BasicTextNormalizer();

/** Edits of one clip: English words (Whisper's English normaliser), CJK characters, other words (basic normaliser). */
export function scoreClip(language: string, reference: string, hypothesis: string): EditCounts {
  if (language === "en") return wordErrors(reference, hypothesis);
  if (metricFor(language) === "cer") return cjkCharacterErrors(reference, hypothesis);
  return wordErrors(reference, hypothesis, (s) => basic.normalize(s));
}

/** Reads and checks a manifest; errors name the file, the entry and the field. */
export async function readManifest(manifestPath: string): Promise<ManifestEntry[]> {
  const path = resolve(manifestPath);
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, "utf8"));
  } catch (e) {
    throw new Error(`manifest ${path}: ${(e as Error).message}`, { cause: e });
  }
  if (!Array.isArray(raw)) throw new Error(`manifest ${path}: expected a JSON array of clips`);
  const dir = dirname(path);
  return raw.map((entry: unknown, i): ManifestEntry => {
    const where = `manifest ${path}: entry ${i}`;
    if (typeof entry !== "object" || entry === null) throw new Error(`${where}: expected an object`);
    const e = entry as Record<string, unknown>;
    const text = (field: string): string => {
      const v = e[field];
      if (typeof v !== "string" || v.length === 0)
        throw new Error(`${where}: "${field}" must be a non-empty string`);
      return v;
    };
    const optional = <T>(field: string, type: "number" | "boolean"): T | undefined => {
      const v = e[field];
      if (v === undefined) return undefined;
      if (typeof v !== type) throw new Error(`${where}: "${field}" must be a ${type}`);
      return v as T;
    };
    const file = text("file");
    return {
      file,
      audioPath: resolve(dir, file),
      transcriptPath: resolve(dir, text("transcript_file")),
      language: text("language"),
      exactReference: optional<boolean>("exact_reference", "boolean") ?? true,
      channels: optional<number>("channels", "number"),
      durationSeconds: optional<number>("duration_s", "number"),
    };
  });
}

const run = promisify(execFile);

/** "LEFT: ", "right:", "ch1:" in front of a per-channel reference line names the channel; it was not said. */
const CHANNEL_LABEL = /^\s*(left|right|ch(annel)?\s*\d+)\s*:\s*/i;

/** Writes each channel of `audioPath` to its own mono WAV in `dir`. */
async function splitChannels(audioPath: string, channels: number, dir: string): Promise<string[]> {
  const paths: string[] = [];
  for (let c = 0; c < channels; c++) {
    const out = join(dir, `ch${c}.wav`);
    await run("ffmpeg", ["-nostdin", "-v", "error", "-y", "-i", audioPath, "-af", `pan=mono|c0=c${c}`, out]);
    paths.push(out);
  }
  return paths;
}

/** Transcribes and scores every clip of the manifest, one at a time (timings stay comparable). */
export async function evaluate(
  manifest: string | readonly ManifestEntry[],
  transcribe: TranscribeFn,
  opts: EvaluateOptions = {},
): Promise<EvalReport> {
  const entries = typeof manifest === "string" ? await readManifest(manifest) : manifest;
  const report: EvalReport = { clips: [], skipped: [], failed: [], languages: [] };
  const note = <T extends ClipResult | SkippedClip | FailedClip>(list: T[], item: T) => {
    list.push(item);
    opts.onClip?.(item);
  };

  for (const entry of entries) {
    if (opts.languageFilter !== undefined && entry.language !== opts.languageFilter) continue;
    if (!entry.exactReference) {
      note(report.skipped, {
        clip: entry.file,
        reason: "reference is another model's output, not a human's",
      });
      continue;
    }
    if (entry.language.includes("+")) {
      note(report.skipped, { clip: entry.file, reason: `mixed languages (${entry.language})` });
      continue;
    }
    let lines: string[];
    try {
      lines = (await readFile(entry.transcriptPath, "utf8"))
        .split(/\r?\n/)
        .filter((l) => l.trim().length > 0);
    } catch (e) {
      note(report.failed, {
        clip: entry.file,
        error: `reference ${entry.transcriptPath}: ${(e as Error).message}`,
      });
      continue;
    }
    const perChannel = (entry.channels ?? 1) > 1 && lines.length === entry.channels;
    const tmp = perChannel ? await mkdtemp(join(tmpdir(), "kikitori-eval-")) : undefined;
    try {
      const targets = perChannel
        ? (await splitChannels(entry.audioPath, entry.channels!, tmp!)).map((path, c) => ({
            clip: `${entry.file}#ch${c}`,
            path,
            reference: lines[c]!.replace(CHANNEL_LABEL, ""),
          }))
        : [{ clip: entry.file, path: entry.audioPath, reference: lines.join(" ") }];
      for (const target of targets) {
        const started = performance.now();
        try {
          const hypothesis = await transcribe(target.path, { language: entry.language });
          const wallSeconds = (performance.now() - started) / 1000;
          const counts = scoreClip(entry.language, target.reference, hypothesis);
          note(report.clips, {
            clip: target.clip,
            language: entry.language,
            metric: metricFor(entry.language),
            reference: target.reference,
            hypothesis,
            counts,
            rate: errorRate(counts),
            wallSeconds,
          });
        } catch (e) {
          note(report.failed, { clip: target.clip, error: e instanceof Error ? e.message : String(e) });
        }
      }
    } catch (e) {
      note(report.failed, { clip: entry.file, error: e instanceof Error ? e.message : String(e) });
    } finally {
      if (tmp) await rm(tmp, { recursive: true, force: true });
    }
  }
  report.languages = summarize(report.clips);
  return report;
}

/** Per-language totals: summed edits over summed reference tokens. */
export function summarize(clips: readonly ClipResult[]): LanguageSummary[] {
  const byLanguage = new Map<string, ClipResult[]>();
  for (const c of clips) byLanguage.set(c.language, [...(byLanguage.get(c.language) ?? []), c]);
  return [...byLanguage].map(([language, list]) => {
    const counts = sumCounts(list.map((c) => c.counts));
    return {
      language,
      metric: metricFor(language),
      clips: list.length,
      counts,
      rate: errorRate(counts),
      wallSeconds: list.reduce((s, c) => s + c.wallSeconds, 0),
    };
  });
}

const percent = (rate: number) => `${(rate * 100).toFixed(1)}%`;

/** A plain-text table: one row per clip, then one per language, then skipped and failed clips. */
export function formatReport(report: EvalReport): string {
  const rows: string[][] = [["clip", "lang", "metric", "rate", "S", "D", "I", "N", "wall s"]];
  for (const c of report.clips) {
    const { substitutions: s, deletions: d, insertions: i, referenceLength: n } = c.counts;
    rows.push([
      c.clip,
      c.language,
      c.metric,
      percent(c.rate),
      `${s}`,
      `${d}`,
      `${i}`,
      `${n}`,
      c.wallSeconds.toFixed(2),
    ]);
  }
  for (const l of report.languages) {
    const { substitutions: s, deletions: d, insertions: i, referenceLength: n } = l.counts;
    rows.push([
      `overall (${l.clips} clips)`,
      l.language,
      l.metric,
      percent(l.rate),
      `${s}`,
      `${d}`,
      `${i}`,
      `${n}`,
      l.wallSeconds.toFixed(2),
    ]);
  }
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((r) => r[col]!.length)));
  const line = (r: string[]) =>
    r.map((cell, col) => (col === 0 ? cell.padEnd(widths[col]!) : cell.padStart(widths[col]!))).join("  ");
  const out = [line(rows[0]!), ...rows.slice(1, 1 + report.clips.length).map(line)];
  if (report.languages.length > 0)
    out.push(widths.map((w) => "-".repeat(w)).join("  "), ...rows.slice(1 + report.clips.length).map(line));
  for (const s of report.skipped) out.push(`skipped ${s.clip}: ${s.reason}`);
  for (const f of report.failed) out.push(`FAILED ${f.clip}: ${f.error}`);
  return out.join("\n");
}
