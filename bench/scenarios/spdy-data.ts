/**
 * "spdy-data": one SpdySession client → SpdySession server over loopback, one stream, DATA in
 * 64 KiB writes; client and server in separate processes. Beside the TCP relay baseline.
 */
import { type BenchContext, type Measurer, mibPerSecond, type Scenario } from '../lib/types.js';
import { startWorker, workerFile } from '../lib/worker.js';
import { tcpRelay } from './tcp-relay.js';

const MiB = 1024 * 1024;

export const spdyData: Scenario = {
  name: 'spdy-data',
  description: 'SpdySession client → server, one stream, 64 KiB DATA writes',
  unit: 'MiB/s',
  better: 'higher',
  baseline: tcpRelay,
  bytes: (quick) => (quick ? 256 * MiB : 1024 * MiB),
  async setup(ctx: BenchContext): Promise<Measurer> {
    const server = await startWorker(workerFile('spdy-server'));
    const client = await startWorker(workerFile('spdy-client'), { port: server.info['port'] });
    return {
      async measure() {
        const r = await client.call<{ ms: number; bytes: number }>('send', { bytes: ctx.bytes });
        return { value: mibPerSecond(r.bytes, r.ms), ...r };
      },
      async close() {
        await Promise.all([client.stop(), server.stop()]);
      },
    };
  },
};
