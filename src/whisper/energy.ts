/** Short-time energy of 16 kHz s16 PCM: where to cut windows, and whether a window holds any sound at all. */

export const SAMPLE_RATE = 16_000;
/** 20 ms frames: short enough to land between words, long enough to smooth single pitch periods. */
const FRAME = 320;

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
  /** Frames whose RMS is above this many dBFS count as sound. */
  thresholdDbfs: number;
  /** A window needs at least this much sound to be worth transcribing. */
  minSoundSeconds: number;
}

/**
 * Whisper invents words ("Thank you.") on silence; a window with almost no energy is skipped instead.
 * -50 dBFS is far below speech recorded at any usable level, and well above digital or dithered silence.
 */
export const DEFAULT_SPEECH_GATE: SpeechGate = { thresholdDbfs: -50, minSoundSeconds: 0.2 };

export function hasSound(pcm: Int16Array, gate: SpeechGate = DEFAULT_SPEECH_GATE): boolean {
  const threshold = (32768 * 10 ** (gate.thresholdDbfs / 20)) ** 2;
  const needed = Math.ceil((gate.minSoundSeconds * SAMPLE_RATE) / FRAME);
  let loud = 0;
  for (let start = 0; start < pcm.length; start += FRAME) {
    if (frameMeanSquare(pcm, start, Math.min(pcm.length, start + FRAME)) > threshold && ++loud >= needed) {
      return true;
    }
  }
  return false;
}
