/**
 * Slow reader: one exec session whose client reads stdout far slower than the upstream can write
 * it. Backpressure must reach the upstream through the middle process, so the middle's memory may
 * not grow with what passes (docs/design.md: ≤ 32 MiB RSS growth for 1 GiB). The writer's pace is
 * measured first (the same program and size, unthrottled, on the direct path); the reader is held
 * to 1/100 of it, but not below `MIN_READER_MIBPS`, so that 1 GiB passes within about 45 s even on
 * a loaded machine — the slowdown reached is reported. The relay and the shim, each a fresh
 * process, carry a reader each at the same time (slow readers cost little CPU); the figure is each
 * one's peak RSS over its RSS before (after a full GC). Most of what any Node process grows by
 * here is garbage not yet collected (the relay, which holds at most a socket buffer, grows too);
 * `retainedMiB`, the RSS after a full GC at the end, tells garbage from kept memory.
 */
import { type MemorySpec, relayPath, shimPath } from '../lib/memory-paths.js';
import { RssSampler } from '../lib/proc.js';
import { expectShimSessionsOk } from '../lib/shim-check.js';
import {
  type BenchContext,
  formatBytes,
  GiB,
  MiB,
  type Sample,
  type Scenario,
  type Trial,
} from '../lib/types.js';
import type { Worker } from '../lib/worker.js';

const MIN_READER_MIBPS = 24;
const totalBytes = (quick: boolean) => (quick ? 32 * MiB : GiB);

export function slowReaderScenario(spec: MemorySpec): Scenario {
  return {
    name: spec.name,
    description: spec.description,
    kind: 'memory',
    unit: 'MiB',
    target: 32,
    upstream: 'lean',
    size: (quick) => formatBytes(totalBytes(quick)),
    rounds: () => 1,
    warmup: false,
    async setup(ctx: BenchContext): Promise<Trial> {
      const { rig } = ctx;
      const [client, upstream] = await Promise.all([rig.client(spec.client), rig.upstream('lean')]);
      const bytes = totalBytes(ctx.quick);
      const notAlone = () => Promise.reject(new Error('measured together'));
      return {
        variants: [
          {
            name: 'relay',
            path: relayPath(spec),
            measure: notAlone,
          },
          {
            name: 'shim',
            path: shimPath(spec),
            measure: notAlone,
          },
        ],
        async measureTogether() {
          const unthrottled = (n: number) =>
            client.call<{ ms: number; bytes: number }>('stdout', {
              url: upstream.info['url'],
              sessions: 1,
              bytes: n,
            });
          await unthrottled(bytes / 16); // warm-up
          const probe = await unthrottled(bytes);
          const writerRate = (probe.bytes / probe.ms) * 1000;
          const rate = Math.max(writerRate / 100, MIN_READER_MIBPS * MiB);
          ctx.log(
            `writer ${(writerRate / MiB).toFixed(0)} MiB/s unthrottled; reader ${(rate / MiB).toFixed(1)} MiB/s (${(writerRate / rate).toFixed(0)}× slower), ${formatBytes(bytes)}`,
          );
          const [relay, shim] = await Promise.all([
            rig.fresh('tcp-relay', { target: upstream.info['url'] }),
            rig.freshShim(spec.shimMode, 'lean'),
          ]);
          try {
            const read = async (middle: Worker): Promise<Sample> => {
              const before = (await middle.call<NodeJS.MemoryUsage>('memory')).rss;
              const sampler = new RssSampler(middle.pid);
              const r = await client.call<{ ms: number }>('slow', { url: middle.info['url'], bytes, rate });
              const peak = sampler.stop();
              const after = (await middle.call<NodeJS.MemoryUsage>('memory')).rss;
              return {
                value: (peak - before) / MiB,
                extra: {
                  retainedMiB: (after - before) / MiB,
                  ms: r.ms,
                  readerMiBps: bytes / MiB / (r.ms / 1000),
                  writerMiBps: writerRate / MiB,
                  slowdown: writerRate / rate,
                },
              };
            };
            const [relayResult, shimResult] = await Promise.all([read(relay), read(shim)]);
            await expectShimSessionsOk(shim, 1);
            return { relay: relayResult, shim: shimResult };
          } finally {
            await Promise.all([relay.stop(), shim.stop()]);
          }
        },
      };
    },
  };
}
