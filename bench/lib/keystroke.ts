/**
 * What the keystroke-latency scenarios share (scenarios/latency.ts, scenarios/keystroke-fresh.ts):
 * one `cat` session, 1-byte stdin writes each waiting for its echo, judged by the round trip's p99
 * in microseconds against what the shim may add (docs/design.md: ≤ 200 µs at p99).
 */
import type { Percentiles } from './stats.js';
import type { Sample, Scenario } from './types.js';
import type { Worker } from './worker.js';

/** The fields that do not depend on the paths measured. */
export function keystrokeScenario(
  spec: { name: string; description: string },
  roundTrips: (quick: boolean) => number,
): Pick<Scenario, 'name' | 'description' | 'kind' | 'unit' | 'target' | 'size'> {
  return {
    name: spec.name,
    description: spec.description,
    kind: 'latency',
    unit: 'µs',
    target: 200,
    size: (quick) => `${roundTrips(quick)} round trips`,
  };
}

/** `count` round trips by `client` through `url`: p99, with p50, p90, p99.9 and the maximum beside it. */
export async function keystrokes(client: Worker, url: string, count: number): Promise<Sample> {
  const r = await client.call<Percentiles>('echo', { url, count });
  return { value: r.p99, extra: { p50: r.p50, p90: r.p90, p999: r.p999, max: r.max } };
}
