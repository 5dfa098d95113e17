/**
 * Throughput scenarios: `sessions` sessions (or forwarded connections of one session) at once,
 * each moving `bytes`, along the three paths (bench/lib/three-paths.ts).
 */
import { type PathSpec, threePaths } from '../lib/three-paths.js';
import { formatBytes, mibPerSecond, type Scenario } from '../lib/types.js';
import { CHUNK } from '../lib/wire.js';

export interface ThroughputSpec extends PathSpec {
  name: string;
  description: string;
  /** The load generator's call, and what it is given besides url/sessions/bytes. */
  call: 'stdout' | 'stdin' | 'download';
  params?: Record<string, unknown>;
  sessions: number;
  /** Bytes per session (or connection). */
  bytes(quick: boolean): number;
  /** Sessions the shim carries per measurement (port-forward: one session, many connections). */
  shimSessionsPerRun: number;
  /** Least shim ÷ relay. */
  target: number;
}

export function throughputScenario(spec: ThroughputSpec): Scenario {
  return {
    name: spec.name,
    description: spec.description,
    kind: 'throughput',
    unit: 'MiB/s',
    target: spec.target,
    upstream: spec.upstream,
    size: (quick) => `${spec.sessions} × ${formatBytes(spec.bytes(quick))}`,
    setup: (ctx) =>
      threePaths(ctx, spec, spec.shimSessionsPerRun, async (client, url, warmup) => {
        const full = spec.bytes(ctx.quick);
        const r = await client.call<{ ms: number; bytes: number }>(spec.call, {
          ...spec.params,
          url,
          sessions: spec.sessions,
          connections: spec.sessions,
          // --quick sizes are small enough to warm up with in full
          bytes: warmup && !ctx.quick ? Math.max(CHUNK, Math.floor(full / 16)) : full,
        });
        return { value: mibPerSecond(r.bytes, r.ms), extra: { ms: r.ms } };
      }),
  };
}
