/**
 * Baseline "tcp-relay": client → plain Node TCP relay → sink over loopback, in two processes (the
 * relay in one, writer and sink in the other), moving the same bytes as the scenario beside it.
 */
import { type BenchContext, type Benchmark, type Measurer, mibPerSecond } from '../lib/types.js';
import { startWorker, workerFile } from '../lib/worker.js';

export const tcpRelay: Benchmark = {
  name: 'tcp-relay',
  description: 'client → Node TCP relay (pipe) → sink, 64 KiB writes',
  unit: 'MiB/s',
  better: 'higher',
  async setup(ctx: BenchContext): Promise<Measurer> {
    const load = await startWorker(workerFile('tcp-load'));
    const relay = await startWorker(workerFile('tcp-relay'), { target: load.info['sinkPort'] });
    return {
      async measure() {
        const r = await load.call<{ ms: number; bytes: number }>('send', {
          bytes: ctx.bytes,
          relayPort: relay.info['port'],
        });
        return { value: mibPerSecond(r.bytes, r.ms), ...r };
      },
      async close() {
        await Promise.all([load.stop(), relay.stop()]);
      },
    };
  },
};
