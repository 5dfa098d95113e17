/**
 * Keystroke latency of a fresh shim process: every round starts a new shim and measures its first
 * round trips with no warm-up (the JIT has compiled nothing of the path yet), beside the direct
 * path. Read it against `keystroke-*`, whose shims are warmed up first: the difference is what a
 * process's first sessions pay. The figure is p99 (p99.9 in the JSON, `extra.p999`).
 */

import { keystrokeScenario, keystrokes } from '../lib/keystroke.js';
import type { ClientName, ShimMode } from '../lib/rig.js';
import type { Scenario } from '../lib/types.js';

export interface FreshLatencySpec {
  name: string;
  description: string;
  client: ClientName;
  shimMode: ShimMode;
}

const roundTrips = (quick: boolean) => (quick ? 1000 : 5000);

export function freshLatencyScenario(spec: FreshLatencySpec): Scenario {
  return {
    ...keystrokeScenario(spec, roundTrips),
    upstream: 'lean',
    rounds: (quick) => (quick ? 2 : 5),
    warmup: false,
    async setup(ctx) {
      const { rig } = ctx;
      const [client, upstream] = await Promise.all([rig.client(spec.client), rig.upstream('lean')]);
      const echo = (url: string) => keystrokes(client, url, roundTrips(ctx.quick));
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
