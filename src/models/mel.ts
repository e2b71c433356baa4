// Whisper's mel filterbank: librosa.filters.mel(sr, n_fft, n_mels) with the Slaney mel scale and
// Slaney normalisation, reproduced bit for bit as float32 (ct2-to-ggml.md §5).

const F_SP = 200 / 3;
const MIN_LOG_HZ = 1000;
const MIN_LOG_MEL = MIN_LOG_HZ / F_SP;
const LOGSTEP = Math.log(6.4) / 27;

function hzToMel(f: number): number {
  return f >= MIN_LOG_HZ ? MIN_LOG_MEL + Math.log(f / MIN_LOG_HZ) / LOGSTEP : f / F_SP;
}

function melToHz(m: number): number {
  return m >= MIN_LOG_MEL ? MIN_LOG_HZ * Math.exp(LOGSTEP * (m - MIN_LOG_MEL)) : F_SP * m;
}

export interface MelFilterbank {
  nMels: number;
  /** Number of FFT bins, 1 + nFft / 2. */
  nBins: number;
  /** Row-major [mel][bin]. */
  data: Float32Array;
}

export function melFilterbank(nMels: number, sampleRate = 16000, nFft = 400): MelFilterbank {
  const nBins = 1 + Math.floor(nFft / 2);
  const fft = Array.from({ length: nBins }, (_, j) => (j * sampleRate) / nFft);
  // numpy.linspace: point i = i * step, the last point set to exactly the maximum.
  const maxMel = hzToMel(sampleRate / 2);
  const step = maxMel / (nMels + 1);
  const melF = Array.from({ length: nMels + 2 }, (_, i) => melToHz(i === nMels + 1 ? maxMel : i * step));
  const data = new Float32Array(nMels * nBins);
  for (let i = 0; i < nMels; i++) {
    const lo = melF[i]!;
    const mid = melF[i + 1]!;
    const hi = melF[i + 2]!;
    const norm = 2 / (hi - lo);
    for (let j = 0; j < nBins; j++) {
      const lower = -(lo - fft[j]!) / (mid - lo);
      const upper = (hi - fft[j]!) / (hi - mid);
      const m = Math.min(lower, upper);
      // numpy's maximum(0, -0.0) keeps the negative zero; Math.max would give +0.
      const w = Object.is(m, -0) ? -0 : Math.max(0, m);
      // librosa stores the triangle in float32, then scales it in float64 and stores float32 again.
      data[i * nBins + j] = Math.fround(Math.fround(w) * norm);
    }
  }
  return { nMels, nBins, data };
}
