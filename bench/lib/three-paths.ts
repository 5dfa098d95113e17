/**
 * The three paths of a scenario, made fair: direct and relay carry the client's own protocol to an
 * upstream of that protocol; the shim carries it to an upstream of the other protocol, translating.
 * Same client process, same upstream process, same bytes; only the middle differs. Round r goes
 * through relay and shim slot r (bench/lib/rig.ts). Each measurement also records the CPU each
 * process used, so the table can say what ran out first.
 */
import { InstructionMeter, instructionsCountable } from './instructions.js';
import { CpuMeter } from './proc.js';
import type { ClientName, ShimMode, UpstreamKind } from './rig.js';
import { expectShimSessionsOk, resetShimSessions } from './shim-check.js';
import type { BenchContext, Sample, Trial, Variant, VariantName } from './types.js';
import type { Worker } from './worker.js';

export interface PathSpec {
  client: ClientName;
  /** The client's protocol, e.g. "WS v5", and the translated upstream's, e.g. "SPDY". */
  speaks: string;
  translatedTo: string;
  /** The upstream protocol the shim is forced to. */
  shimMode: ShimMode;
  upstream: UpstreamKind;
  /**
   * Measure recording's cost: the shim records every session, and the baseline (in the relay's
   * place) is the same shim not recording.
   */
  recording?: boolean;
  /**
   * Instead of the in-process shim: `kubeshim serve` command lines with these worker counts, as the
   * variants `shim` and `shim2` (bench/scenarios/workers.ts).
   */
  serveWorkers?: [number, number];
}

/** One measurement: the load generator's call against `url`. */
export type RunOnce = (client: Worker, url: string, warmup: boolean) => Promise<Omit<Sample, 'cpu'>>;

/**
 * Set up the three paths. `shimSessionsPerRun`: how many sessions one measurement opens through
 * a shim; at the end every one of them must have ended as a success in its shim's log. With
 * `--profile`, the measured rounds (not the warm-up) through shim slot 0 are CPU-profiled into
 * `<name>.cpuprofile`.
 */
export async function threePaths(
  ctx: BenchContext,
  spec: PathSpec & { name: string },
  shimSessionsPerRun: number,
  run: RunOnce,
): Promise<Trial> {
  const { rig } = ctx;
  const slots = Array.from({ length: ctx.slots }, (_, i) => i);
  const serving = spec.serveWorkers;
  // `serve` command lines are a primary and its workers each: one of each kind, not one per slot
  const shimsOf = (workers: number | undefined) =>
    Promise.all(
      (workers === undefined ? slots : [0]).map((i) =>
        workers === undefined
          ? rig.shim(spec.shimMode, spec.upstream, i, spec.recording)
          : rig.serve(spec.shimMode, spec.upstream, workers, i),
      ),
    );
  const [client, upstream, relays, shims, shims2] = await Promise.all([
    rig.client(spec.client),
    rig.upstream(spec.upstream),
    Promise.all(
      slots.map((i) =>
        spec.recording ? rig.shim(spec.shimMode, spec.upstream, i) : rig.relay(spec.upstream, i),
      ),
    ),
    shimsOf(serving?.[0]),
    serving ? shimsOf(serving[1]) : [],
  ]);
  await Promise.all([...shims, ...shims2].map(resetShimSessions));
  const shimRuns = new Map<Worker, number>();
  const profiled = shims[0]!;
  let profiling = false;
  const variant = (name: VariantName, middles: Worker[] | undefined, path: string): Variant => ({
    name,
    path,
    async measure(warmup, round) {
      const middle = middles?.[round % middles.length];
      if (ctx.profileDir && middle === profiled && !warmup && !profiling) {
        profiling = true;
        await profiled.call('profileStart');
      }
      const pids: Record<string, number> = { client: client.pid, upstream: upstream.pid };
      if (middle) pids[name] = middle.pid;
      const cpu = new CpuMeter(pids);
      const instructions = middle && instructionsCountable() ? new InstructionMeter(middle.pid) : undefined;
      const sample = await run(client, String((middle ?? upstream).info['url']), warmup);
      const cpuUsed = cpu.stop();
      const perSecond = await instructions?.stop();
      if (name === 'shim' || name === 'shim2') shimRuns.set(middle!, (shimRuns.get(middle!) ?? 0) + 1);
      const extra =
        perSecond === undefined ? sample.extra : { ...sample.extra, middleInstructionsPerSec: perSecond };
      return { ...sample, extra, cpu: cpuUsed };
    },
  });
  const up = `${spec.speaks} upstream`;
  const through = (workers?: number) =>
    `${spec.speaks} client → kubeshim${workers ? ` --workers ${workers}` : ''}${spec.recording ? ', recording on' : ''} → ${spec.translatedTo} upstream`;
  return {
    variants: [
      variant('direct', undefined, `${spec.speaks} client → ${up}`),
      spec.recording
        ? variant(
            'relay',
            relays,
            `${spec.speaks} client → kubeshim, recording off → ${spec.translatedTo} upstream`,
          )
        : variant('relay', relays, `${spec.speaks} client → TCP relay → ${up}`),
      variant('shim', shims, through(serving?.[0])),
      ...(serving ? [variant('shim2', shims2, through(serving[1]))] : []),
    ],
    close: async () => {
      if (profiling)
        await profiled.call('profileStop', { file: `${ctx.profileDir}/${spec.name}.cpuprofile` });
      for (const [shim, runs] of shimRuns) await expectShimSessionsOk(shim, runs * shimSessionsPerRun);
    },
  };
}
