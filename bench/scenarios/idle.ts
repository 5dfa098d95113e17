/**
 * Idle sessions: thousands of exec sessions held open through the middle process, each proven set
 * up end to end by one echoed byte, then left quiet (pings only). The figure is the middle's RSS
 * growth per session, measured after a full GC before and after, in a middle process of its own
 * each round. The lean upstream serves them: 5,000 emulator processes would measure the machine.
 */
import { type MemorySpec, relayPath, shimPath } from '../lib/memory-paths.js';
import { expectShimSessionsOk } from '../lib/shim-check.js';
import {
  type BenchContext,
  KiB,
  type Sample,
  type Scenario,
  type Trial,
  type Variant,
} from '../lib/types.js';
import type { Worker } from '../lib/worker.js';

const sessionCount = (quick: boolean) => (quick ? 1000 : 5000);

export function idleScenario(spec: MemorySpec): Scenario {
  return {
    name: spec.name,
    description: spec.description,
    kind: 'memory',
    unit: 'KiB/session',
    target: 64,
    upstream: 'lean',
    size: (quick) => `${sessionCount(quick)} sessions`,
    rounds: () => 1,
    warmup: false,
    async setup(ctx: BenchContext): Promise<Trial> {
      const { rig } = ctx;
      const [client, upstream] = await Promise.all([rig.client(spec.client), rig.upstream('lean')]);
      const sessions = sessionCount(ctx.quick);
      const hold = async (middle: Worker, isShim: boolean): Promise<Sample> => {
        try {
          const before = await middle.call<NodeJS.MemoryUsage>('memory');
          const held = await client.call<{ ms: number }>('hold', { url: middle.info['url'], sessions });
          const after = await middle.call<NodeJS.MemoryUsage>('memory');
          await client.call('release');
          if (isShim) await expectShimSessionsOk(middle, sessions);
          return {
            value: (after.rss - before.rss) / sessions / KiB,
            extra: {
              heapKiBPerSession: (after.heapUsed - before.heapUsed) / sessions / KiB,
              externalKiBPerSession: (after.external - before.external) / sessions / KiB,
              setupMs: held.ms,
            },
          };
        } finally {
          await middle.stop();
        }
      };
      const variant = (name: Variant['name'], path: string, start: () => Promise<Worker>): Variant => ({
        name,
        path,
        measure: async () => hold(await start(), name === 'shim'),
      });
      return {
        variants: [
          variant('relay', relayPath(spec), () => rig.fresh('tcp-relay', { target: upstream.info['url'] })),
          variant('shim', shimPath(spec), () => rig.freshShim(spec.shimMode, 'lean')),
        ],
      };
    },
  };
}
