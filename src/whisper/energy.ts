/** Short-time energy of 16 kHz s16 PCM: where to cut windows, and whether a window holds any sound at all. */

export const SAMPLE_RATE = 16_000;
/** 20 ms frames: short enough to land between words, long enough to smooth single pitch periods. */
export const FRAME = 320;

function frameMeanSquare(pcm: Int16Array, start: number, end: number): number {
  let sum = 0;
  for (let i = start; i < end; i++) {
    const v = pcm[i]!;
    sum += v * v;
  }
  return sum / Math.max(1, end - start);
}

/**
 * The sample index of the quietest 20 ms frame's middle within [from, to): where to cut a window so that
 * no word is split. Prefers the later frame on ties, so windows stay long.
 */
export function quietestCut(pcm: Int16Array, from: number, to: number): number {
  let best = to;
  let bestEnergy = Infinity;
  for (let start = Math.max(0, from); start + FRAME <= to; start += FRAME) {
    const e = frameMeanSquare(pcm, start, start + FRAME);
    if (e <= bestEnergy) {
      bestEnergy = e;
      best = start + FRAME / 2;
    }
  }
  return best;
}

export interface SpeechGate {
  /** The loud frames (95th percentile) must be at least this many dB above the quiet ones (10th). */
  minRangeDb: number;
  /** ... and above this absolute level, which lies below any recording's speech but above dither. */
  minLoudDbfs: number;
}

/**
 * Whisper invents words ("Thank you.") on silence, so windows without speech-like energy are skipped.
 * Speech rises and falls between syllables and pauses; silence, hum and steady noise do not. The test is
 * relative, not an absolute level, because real recordings can be very quiet (FLEURS clips peak near
 * -50 dBFS) and whisper transcribes them well.
 */
export const DEFAULT_SPEECH_GATE: SpeechGate = { minRangeDb: 12, minLoudDbfs: -75 };

/** The level of each whole 20 ms frame, in dBFS (digital silence: -120). */
export function frameLevelsDb(pcm: Int16Array): number[] {
  const levels: number[] = [];
  for (let start = 0; start + FRAME <= pcm.length; start += FRAME) {
    levels.push(10 * Math.log10(frameMeanSquare(pcm, start, start + FRAME) / 32768 ** 2 + 1e-12));
  }
  return levels;
}

export function hasSound(pcm: Int16Array, gate: SpeechGate = DEFAULT_SPEECH_GATE): boolean {
  const levels = frameLevelsDb(pcm);
  if (levels.length === 0) return false;
  levels.sort((a, b) => a - b);
  const at = (q: number) => levels[Math.min(levels.length - 1, Math.floor(q * levels.length))]!;
  const loud = at(0.95);
  return loud >= gate.minLoudDbfs && loud - at(0.1) >= gate.minRangeDb;
}

/** False only for digital silence or near it (no 20 ms frame above the gate's absolute level): no speech to look for. */
export function anySound(pcm: Int16Array, gate: SpeechGate = DEFAULT_SPEECH_GATE): boolean {
  const threshold = 32768 ** 2 * 10 ** (gate.minLoudDbfs / 10);
  for (let start = 0; start + FRAME <= pcm.length; start += FRAME)
    if (frameMeanSquare(pcm, start, start + FRAME) >= threshold) return true;
  return false;
}
