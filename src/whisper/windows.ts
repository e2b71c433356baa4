/**
 * How audio is cut into whisper's ≤ 30 s windows. Whisper pays one full encoder pass per window however
 * little audio it holds, so windows are packed with speech: silent stretches longer than
 * MIN_GAP_SECONDS are shortened to 2 × PAD_SECONDS, and each window is filled up to 30 s. `spans` maps
 * window time back to source time, so timestamps stay those of the original audio.
 */
import { FRAME, SAMPLE_RATE, frameLevelsDb, quietestCut } from "./energy.js";

/** A silence must be at least this long to be shortened (shorter pauses are part of speech). */
const MIN_GAP_SECONDS = 0.6;
/** Kept on each side of a shortened silence, so speech onsets and fades stay whole. */
const PAD_SECONDS = 0.2;
/** A frame this close to the buffer's noise floor (10th percentile level) counts as silent. */
const SILENCE_ABOVE_FLOOR_DB = 6;

/** `length` samples of the window starting at `packed` come from the source at `source`. */
export interface Span {
  packed: number;
  source: number;
  length: number;
}

export interface PackedWindow {
  samples: Int16Array;
  spans: Span[];
  /** Source samples this window covers, from the start of the buffer (silence after its end included). */
  sourceLength: number;
}

/** The parts of `pcm` that are kept when long silences are shortened, as source ranges. */
export function keptRanges(pcm: Int16Array, pack = true): Array<[number, number]> {
  if (!pack || pcm.length === 0) return [[0, pcm.length]];
  const levels = frameLevelsDb(pcm);
  const sorted = [...levels].sort((a, b) => a - b);
  const floor = sorted[Math.floor(0.1 * sorted.length)] ?? -120;
  const minGap = Math.round((MIN_GAP_SECONDS * SAMPLE_RATE) / FRAME);
  const pad = Math.round(PAD_SECONDS * SAMPLE_RATE);
  const silent = (i: number) => levels[i]! < floor + SILENCE_ABOVE_FLOOR_DB;
  const ranges: Array<[number, number]> = [];
  let keepFrom = 0;
  for (let i = 0; i < levels.length;) {
    if (!silent(i)) {
      i++;
      continue;
    }
    let j = i;
    while (j < levels.length && silent(j)) j++;
    if (j - i >= minGap) {
      // Cut the middle of the silence; at the very start or end of the buffer, all but the pad beside speech.
      const cutFrom = i === 0 ? 0 : i * FRAME + pad;
      const cutTo = j === levels.length ? pcm.length : j * FRAME - pad;
      if (cutFrom > keepFrom) ranges.push([keepFrom, cutFrom]);
      keepFrom = Math.max(keepFrom, cutTo);
    }
    i = j;
  }
  if (keepFrom < pcm.length) ranges.push([keepFrom, pcm.length]);
  return ranges;
}

/** Samples the buffer keeps once packed. */
export function packedLength(pcm: Int16Array, pack = true): number {
  return keptRanges(pcm, pack).reduce((n, [a, b]) => n + b - a, 0);
}

/**
 * The next window from the start of `pcm`: at most `maxSamples` of packed audio. When more audio follows
 * (`final` false, or the buffer holds more than fits), the window ends at the quietest 20 ms frame of its
 * last `cutSearchSamples`, so no word is split.
 */
export function packWindow(
  pcm: Int16Array,
  maxSamples: number,
  {
    final,
    pack = true,
    cutSearchSamples = 5 * SAMPLE_RATE,
  }: { final: boolean; pack?: boolean; cutSearchSamples?: number },
): PackedWindow {
  const spans: Span[] = [];
  let packed = 0;
  /** Every kept range fits: the window holds all the speech of the buffer. */
  let complete = true;
  for (const [a, b] of keptRanges(pcm, pack)) {
    if (packed >= maxSamples) {
      complete = false;
      break;
    }
    const length = Math.min(b - a, maxSamples - packed);
    if (length < b - a) complete = false;
    spans.push({ packed, source: a, length });
    packed += length;
  }
  let samples = new Int16Array(packed);
  for (const s of spans) samples.set(pcm.subarray(s.source, s.source + s.length), s.packed);
  if (!(final && complete) && packed >= maxSamples) {
    const cut = quietestCut(samples, packed - cutSearchSamples, packed);
    samples = samples.slice(0, cut);
    while (spans.length > 0 && spans[spans.length - 1]!.packed >= cut) spans.pop();
    const end = spans[spans.length - 1];
    if (end) end.length = Math.min(end.length, cut - end.packed);
    return { samples, spans, sourceLength: end ? end.source + end.length : 0 };
  }
  const last = spans[spans.length - 1];
  // All of a final buffer is covered (its trailing silence included); otherwise up to the last span.
  return { samples, spans, sourceLength: complete || !last ? pcm.length : last.source + last.length };
}

/**
 * Window sample → source sample. At a seam between two spans, "start" gives the later span's start
 * (a segment starting there starts after the removed silence) and "end" the earlier span's end.
 */
export function toSource(spans: readonly Span[], packed: number, edge: "start" | "end"): number {
  if (spans.length === 0) return 0;
  for (let i = 0; i < spans.length; i++) {
    const s = spans[i]!;
    const within = edge === "start" ? packed < s.packed + s.length : packed <= s.packed + s.length;
    if (within) return s.source + Math.max(0, packed - s.packed);
  }
  const end = spans[spans.length - 1]!;
  return end.source + end.length;
}
