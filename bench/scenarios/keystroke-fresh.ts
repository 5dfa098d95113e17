/**
 * Keystroke latency of a fresh shim process: every round starts a new shim and measures its first
 * round trips with no warm-up (the JIT has compiled nothing of the path yet), beside the direct
 * path. Read it against `keystroke-*`, whose shims are warmed up first: the difference is what a
 * process's first sessions pay. The figure is p99 (p99.9 in the JSON, `extra.p999`).
 */
import type { ClientName, ShimMode } from '../lib/rig.js';
import type { Percentiles } from '../lib/stats.js';
import type { Sample, Scenario } from '../lib/types.js';

export interface FreshLatencySpec {
  name: string;
  description: string;
  client: ClientName;
  shimMode: ShimMode;
}

const roundTrips = (quick: boolean) => (quick ? 1000 : 5000);

export function freshLatencyScenario(spec: FreshLatencySpec): Scenario {
  return {
    name: spec.name,
    description: spec.description,
    kind: 'latency',
    unit: 'µs',
    target: 200,
    upstream: 'lean',
    size: (quick) => `${roundTrips(quick)} round trips`,
    rounds: (quick) => (quick ? 2 : 5),
    warmup: false,
    async setup(ctx) {
      const { rig } = ctx;
      const [client, upstream] = await Promise.all([rig.client(spec.client), rig.upstream('lean')]);
      const echo = async (url: string): Promise<Sample> => {
        const r = await client.call<Percentiles>('echo', { url, count: roundTrips(ctx.quick) });
        return { value: r.p99, extra: { p50: r.p50, p90: r.p90, p999: r.p999, max: r.max } };
      };
      return {
        variants: [
          { name: 'direct', path: 'client → upstream', measure: () => echo(String(upstream.info['url'])) },
          {
            name: 'shim',
            path: `client → a fresh kubeshim → ${spec.shimMode} upstream`,
            async measure() {
              const shim = await rig.freshShim(spec.shimMode, 'lean');
              try {
                return await echo(String(shim.info['url']));
              } finally {
                await shim.stop();
              }
            },
          },
        ],
      };
    },
  };
}
