/**
 * What a benchmark scenario is, for the runner (bench/run.ts). Every scenario measures the same
 * load along up to three paths in the same run, alternately: `direct` (client → upstream),
 * `relay` (client → plain Node TCP relay → upstream, the practical limit of a Node proxy) and
 * `shim` (client → kubeshim translating → an upstream of the other protocol). Results are reported
 * as the shim against the relay (or against direct, for latency): this machine is shared and noisy,
 * absolute figures mean little (docs/design.md "Targets").
 */
import type { Rig } from './rig.js';

/** `shim2`: the same shim with more workers (`serve --workers`), where a scenario compares them. */
export type VariantName = 'direct' | 'relay' | 'shim' | 'shim2';

export interface BenchContext {
  /** `--quick`: smaller sizes, the whole run under a minute. */
  quick: boolean;
  /** The shared processes (upstream, relay, shims, load generators). */
  rig: Rig;
  /** One progress line on stderr. */
  log(message: string): void;
  /** `--profile`: where the shim's CPU profiles go. */
  profileDir?: string;
  /** Measured rounds of the scenario being set up. */
  rounds: number;
  /** How many relay and shim processes those rounds go through (round r: slot r % slots). */
  slots: number;
}

/** One measurement of one variant. `value` is in the scenario's unit; the rest explains it. */
export interface Sample {
  value: number;
  /** Other figures worth a median (ms, bytes, p50 …). */
  extra?: Record<string, number>;
  /** CPU of each process during the measurement, % of one core. */
  cpu?: Record<string, number>;
}

/** One path of a scenario, set up once and measured several times. */
export interface Variant {
  name: VariantName;
  /** What carries the session, e.g. "WS v5 client → shim → SPDY upstream". */
  path: string;
  /**
   * Measure round `round` (0-based); `warmup`: a smaller, discarded run of that round's processes
   * (JIT, connection pools).
   */
  measure(warmup: boolean, round: number): Promise<Sample>;
}

export interface Trial {
  variants: Variant[];
  /** For scenarios whose variants run at the same time: one call measures them all. */
  measureTogether?(): Promise<Partial<Record<VariantName, Sample>>>;
  close?(): Promise<void>;
}

/**
 * How a scenario is judged (docs/design.md "Targets"):
 * - `throughput`: shim ÷ relay ≥ target;
 * - `latency`: shim p99 − direct p99 ≤ target (µs);
 * - `memory`: the shim's value ≤ target (in the scenario's unit).
 */
export type Kind = 'throughput' | 'latency' | 'memory';

export interface Scenario {
  name: string;
  description: string;
  kind: Kind;
  /** Unit of Sample.value. */
  unit: string;
  target: number;
  /** Which upstream serves it, and why (reported). */
  upstream: string;
  /** What one measurement moves, for the table. */
  size(quick: boolean): string;
  /** Rounds instead of `--repeat` (memory scenarios are slow and steady). */
  rounds?(quick: boolean): number;
  /** Run a discarded warm-up round first (default true). */
  warmup?: boolean;
  setup(ctx: BenchContext): Promise<Trial>;
}

/** Throughput of `bytes` moved in `ms`, in MiB/s. */
export function mibPerSecond(bytes: number, ms: number): number {
  return bytes / (1024 * 1024) / (ms / 1000);
}

export const KiB = 1024;
export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

/** 1073741824 → "1 GiB", 33554432 → "32 MiB". */
export function formatBytes(n: number): string {
  if (n >= GiB && n % GiB === 0) return `${n / GiB} GiB`;
  if (n >= MiB) return `${Math.round(n / MiB)} MiB`;
  return `${Math.round(n / KiB)} KiB`;
}
