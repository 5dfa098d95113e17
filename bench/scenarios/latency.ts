/**
 * Keystroke latency: one `cat` session, 1-byte stdin writes each waiting for its echo on stdout,
 * one after the other, along the three paths (bench/lib/three-paths.ts). The figure is the round
 * trip's p99 in microseconds (median over the rounds); what is judged is what the shim adds over
 * the direct path (docs/design.md: ≤ 200 µs at p99).
 */
import { keystrokeScenario, keystrokes } from '../lib/keystroke.js';
import { type PathSpec, threePaths } from '../lib/three-paths.js';
import type { Scenario } from '../lib/types.js';

export interface LatencySpec extends PathSpec {
  name: string;
  description: string;
}

const roundTrips = (quick: boolean) => (quick ? 300 : 1000);
/** Many short rounds, so that a burst of load from elsewhere on the machine hits every path alike. */
const rounds = (quick: boolean) => (quick ? 3 : 15);

export function latencyScenario(spec: LatencySpec): Scenario {
  return {
    ...keystrokeScenario(spec, roundTrips),
    upstream: spec.upstream,
    rounds,
    setup: (ctx) =>
      threePaths(ctx, spec, 1, (client, url, warmup) =>
        keystrokes(client, url, warmup ? 200 : roundTrips(ctx.quick)),
      ),
  };
}
