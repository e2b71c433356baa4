/** Order statistics for benchmark samples (nearest-rank percentiles, no interpolation). */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export const median = (xs: readonly number[]) => percentile(xs, 50);
export const min = (xs: readonly number[]) => (xs.length ? Math.min(...xs) : NaN);
export const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;

export interface Summary {
  n: number;
  p50: number;
  p99: number;
  min: number;
  max: number;
  mean: number;
}

export function summary(xs: readonly number[]): Summary {
  return {
    n: xs.length,
    p50: round(percentile(xs, 50)),
    p99: round(percentile(xs, 99)),
    min: round(min(xs)),
    max: round(xs.length ? Math.max(...xs) : NaN),
    mean: round(xs.reduce((s, x) => s + x, 0) / xs.length),
  };
}
