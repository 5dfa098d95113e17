/**
 * Load generator and sink for the TCP relay baseline, in one process: each call connects to the
 * relay, writes the bytes in 64 KiB writes, and stops the clock when the sink behind the relay has
 * counted them all.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import { serveWorker } from '../lib/worker.js';

const chunk = randomBytes(64 * 1024);
let expect: { bytes: number; done: () => void } | undefined;

const sink = createServer((socket) => {
  let count = 0;
  socket.on('data', (d: Buffer) => {
    count += d.length;
    if (expect && count >= expect.bytes) expect.done();
  });
  socket.on('error', () => {});
});
sink.listen(0, '127.0.0.1');
await once(sink, 'listening');

serveWorker(
  { sinkPort: (sink.address() as { port: number }).port },
  {
    send: async (params) => {
      const bytes = params['bytes'] as number;
      const socket = connect({ port: params['relayPort'] as number, host: '127.0.0.1' });
      await once(socket, 'connect');
      socket.setNoDelay(true);
      const arrived = new Promise<void>((done) => {
        expect = { bytes, done };
      });
      const started = performance.now();
      for (let sent = 0; sent < bytes; sent += chunk.length) {
        const piece = bytes - sent >= chunk.length ? chunk : chunk.subarray(0, bytes - sent);
        if (!socket.write(piece)) await once(socket, 'drain');
      }
      await arrived;
      const ms = performance.now() - started;
      socket.end();
      expect = undefined;
      return { ms, bytes };
    },
  },
);
