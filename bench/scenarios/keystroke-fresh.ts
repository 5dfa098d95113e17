/**
 * Keystroke latency of a fresh shim process: every round starts a new shim and measures its first
 * round trips, beside the direct path. The shim warms its hot paths up at start as `serve` does
 * (src/warmup); in the relay's column, a fresh shim without that warm-up (`serve --no-warm-up`),
 * whose JIT has compiled nothing of the path yet. Read it against `keystroke-*`, whose shims have
 * carried other sessions first. The figure is p99 (p99.9 in the JSON, `extra.p999`).
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
      // the load generator and the upstream are warmed, so that what is measured is the fresh shim
      await echo(String(upstream.info['url']));
      const throughFresh = async (warm: boolean) => {
        const shim = await rig.freshShim(spec.shimMode, 'lean', false, warm);
        try {
          return await echo(String(shim.info['url']));
        } finally {
          await shim.stop();
        }
      };
      return {
        variants: [
          { name: 'direct', path: 'client → upstream', measure: () => echo(String(upstream.info['url'])) },
          {
            name: 'relay',
            path: `client → a fresh kubeshim, no warm-up → ${spec.shimMode} upstream`,
            measure: () => throughFresh(false),
          },
          {
            name: 'shim',
            path: `client → a fresh kubeshim → ${spec.shimMode} upstream`,
            measure: () => throughFresh(true),
          },
        ],
      };
    },
  };
}
