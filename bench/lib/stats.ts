/** Order statistics for the runner and the load generators. */

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Nearest-rank percentile of sorted values. */
function rank(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export interface Percentiles {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  /** Of 1,000 values, the second largest: read it over several rounds. */
  p999: number;
  max: number;
}

export function percentiles(xs: number[]): Percentiles {
  const s = [...xs].sort((a, b) => a - b);
  return {
    n: s.length,
    p50: rank(s, 50),
    p90: rank(s, 90),
    p99: rank(s, 99),
    p999: rank(s, 99.9),
    max: s.at(-1) ?? 0,
  };
}
