/**
 * Speech regions → chunks: the units whisper decodes, one ≤ 30 s window each, independent of each other
 * (no text carried from one to the next), so any of them can be decoded anywhere, in any order, and the
 * transcript is the same.
 *
 * A chunk is the consecutive speech regions of one utterance (as Silero VAD found them, padded) laid end to
 * end with a 1 s pause between them, up to 30 s of audio; the silence between regions is left out, so a file
 * costs encoder passes in proportion to its speech and its utterances, not its length. Each region is
 * brought to one loudness before decoding: Whisper, given a quiet voice right after a loud one in the same
 * window, drops the quiet one (measured: BENCHMARKS.md, long audio); level does not otherwise matter to it.
 */
import type { SpeechRegion } from "./addon.js";
import { FRAME, SAMPLE_RATE, quietestCut } from "./energy.js";
import type { Span } from "./windows.js";

/** Whisper's window: a chunk holds at most this much audio. */
export const CHUNK_SAMPLES = 30 * SAMPLE_RATE;
/**
 * Silence put between two regions of one chunk, so Whisper hears them as separate utterances. With 0.3 s
 * (a pause within one speaker's turn) the neighbouring clips in a window cost the mixed loud/quiet/telephone
 * file about a WER point, spread over all its variants (12.0-13.4 % over 6 runs; 11.3-11.4 % with 1 s;
 * its clips one by one 9.8 %), for ~15 % more chunks.
 */
export const PAUSE_SAMPLES = 1 * SAMPLE_RATE;
/** Every region is scaled to this RMS level (−20 dBFS) ... */
const TARGET_RMS = 0.1 * 32768;
/** ... by at most this gain either way (+40 dB / −20 dB), never clipping. */
const MAX_GAIN = 100;
const MIN_GAIN = 0.1;

/** Source sample ranges [start, end) of one chunk, in order. */
export interface Chunk {
  regions: Array<[number, number]>;
}

/** Regions (seconds) → sample ranges, each at most one window long (longer ones cut at their quietest points). */
export function regionSamples(pcm: Int16Array, regions: readonly SpeechRegion[]): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const r of regions) {
    let start = Math.max(0, Math.round(r.start * SAMPLE_RATE));
    const end = Math.min(pcm.length, Math.round(r.end * SAMPLE_RATE));
    while (end - start > CHUNK_SAMPLES) {
      const cut = quietestCut(pcm, start + CHUNK_SAMPLES - 5 * SAMPLE_RATE, start + CHUNK_SAMPLES);
      out.push([start, cut]);
      start = cut;
    }
    if (end > start) out.push([start, end]);
  }
  return out;
}

/**
 * Padded speech regions closer than this are one utterance (a pause inside a sentence or a turn), not two:
 * 1 s between padded regions is 1.6 s of silence.
 */
export const UTTERANCE_GAP_SAMPLES = 1 * SAMPLE_RATE;

/** Whether region `next` goes on the utterance that region `previous` belongs to. */
export const sameUtterance = (previous: readonly [number, number], next: readonly [number, number]) =>
  next[0] - previous[1] < UTTERANCE_GAP_SAMPLES;

/**
 * Regions → chunks: the regions of one utterance (less than UTTERANCE_GAP apart) packed into chunks of at most
 * CHUNK_SAMPLES (pauses between regions included); a longer silence starts a new chunk. Whisper decodes a
 * window that starts at an utterance and holds only it best: packing several utterances into one window cost
 * the mixed loud/quiet/telephone file 1.5 WER points over its clips one by one (tiny.en drops or garbles
 * an utterance after a change of voice or channel), for fewer encoder passes (BENCHMARKS.md, long audio).
 */
export function planChunks(regions: ReadonlyArray<[number, number]>): Chunk[] {
  const chunks: Chunk[] = [];
  let current: Chunk | undefined;
  let length = 0;
  for (const [start, end] of regions) {
    const add = end - start + PAUSE_SAMPLES;
    const last = current?.regions.at(-1);
    if (current && last && sameUtterance(last, [start, end]) && length + add <= CHUNK_SAMPLES) {
      current.regions.push([start, end]);
      length += add;
    } else {
      current = { regions: [[start, end]] };
      chunks.push(current);
      length = end - start;
    }
  }
  return chunks;
}

/** The chunk's audio (regions level-matched, pauses between them) and where each part comes from in `pcm`. */
export function chunkAudio(pcm: Int16Array, chunk: Chunk): { samples: Int16Array; spans: Span[] } {
  const spans: Span[] = [];
  let packed = 0;
  for (const [start, end] of chunk.regions) {
    if (spans.length > 0) packed += PAUSE_SAMPLES;
    spans.push({ packed, source: start, length: end - start });
    packed += end - start;
  }
  const samples = new Int16Array(packed);
  for (const s of spans) {
    const region = pcm.subarray(s.source, s.source + s.length);
    const gain = levelGain(region);
    for (let i = 0; i < region.length; i++) samples[s.packed + i] = Math.round(region[i]! * gain);
  }
  return { samples, spans };
}

/** Half the window over which speechLevelled measures the level: 1 s on each side of each 20 ms frame. */
const LEVEL_WINDOW_FRAMES = 50;

/**
 * The audio with its level evened out (each 20 ms frame scaled towards TARGET_RMS by the level of the 2 s
 * around it, gain within the limits), for speech detection only: Silero VAD misses speech recorded very
 * quietly (the test data's FLEURS clips, −64 dBFS on average, were not found at all).
 */
export function speechLevelled(pcm: Int16Array): Int16Array {
  const frames = Math.ceil(pcm.length / FRAME);
  const prefix = new Float64Array(frames + 1);
  for (let f = 0; f < frames; f++) {
    let sum = 0;
    const end = Math.min(pcm.length, (f + 1) * FRAME);
    for (let i = f * FRAME; i < end; i++) sum += pcm[i]! * pcm[i]!;
    prefix[f + 1] = prefix[f]! + sum;
  }
  const out = new Int16Array(pcm.length);
  for (let f = 0; f < frames; f++) {
    const a = Math.max(0, f - LEVEL_WINDOW_FRAMES);
    const b = Math.min(frames, f + LEVEL_WINDOW_FRAMES + 1);
    const rms = Math.sqrt((prefix[b]! - prefix[a]!) / ((b - a) * FRAME));
    const gain = rms === 0 ? 1 : Math.max(MIN_GAIN, Math.min(MAX_GAIN, TARGET_RMS / rms));
    const end = Math.min(pcm.length, (f + 1) * FRAME);
    for (let i = f * FRAME; i < end; i++)
      out[i] = Math.max(-32768, Math.min(32767, Math.round(pcm[i]! * gain)));
  }
  return out;
}

/** The gain that brings a region to TARGET_RMS, within the gain limits and without clipping. */
function levelGain(region: Int16Array): number {
  let sum = 0;
  let peak = 1;
  for (const v of region) {
    sum += v * v;
    peak = Math.max(peak, Math.abs(v));
  }
  const rms = Math.sqrt(sum / Math.max(1, region.length));
  if (rms === 0) return 1;
  return Math.min(Math.max(MIN_GAIN, Math.min(MAX_GAIN, TARGET_RMS / rms)), 32767 / peak);
}
