/**
 * What a benchmark is, for the runner (bench/run.ts). A scenario is always measured beside a
 * baseline in the same run, alternately, and reported as a ratio to it: this machine is shared and
 * noisy, absolute figures mean little (design.md "Targets").
 */

export interface BenchContext {
  /** `--quick`: smaller sizes, the whole run under a minute. */
  quick: boolean;
  /** Bytes each measurement moves, as the scenario chose; its baseline moves the same. */
  bytes: number;
  /** One progress line on stderr. */
  log(message: string): void;
}

/** One measurement. `value` is in the benchmark's unit; the rest explains it. */
export interface Sample {
  value: number;
  bytes?: number;
  ms?: number;
}

/** Processes and sockets set up once, then measured several times. */
export interface Measurer {
  measure(): Promise<Sample>;
  close(): Promise<void>;
}

export interface Benchmark {
  name: string;
  description: string;
  unit: string;
  /** Whether a bigger value is better (throughput) or a smaller one (latency, memory). */
  better: 'higher' | 'lower';
  setup(ctx: BenchContext): Promise<Measurer>;
}

export interface Scenario extends Benchmark {
  /** Measured beside this scenario, with the same byte count. */
  baseline: Benchmark;
  /** Bytes per measurement. */
  bytes(quick: boolean): number;
  /** The design target as a ratio to the baseline (e.g. 0.8 = at least 80 % of the baseline). */
  targetRatio?: number;
}

/** Throughput of `bytes` moved in `ms`, in MiB/s. */
export function mibPerSecond(bytes: number, ms: number): number {
  return bytes / (1024 * 1024) / (ms / 1000);
}
