/**
 * Load generator for "spdy-data": one SpdySession client; each call opens one stream, writes the
 * bytes in 64 KiB writes, ends it, and waits for the server's count.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect } from 'node:net';
import { SpdySession } from '../../src/spdy/session.js';
import { serveWorker, workerParams } from '../lib/worker.js';

const { port } = workerParams() as { port: number };
const socket = connect({ port, host: '127.0.0.1' });
await once(socket, 'connect');
const session = new SpdySession(socket, { role: 'client' });
const chunk = randomBytes(64 * 1024);

serveWorker(
  {},
  {
    send: async (params) => {
      const bytes = params['bytes'] as number;
      const stream = await session.openStream({ streamtype: 'data' });
      const reply: Buffer[] = [];
      stream.on('data', (d: Buffer) => reply.push(d));
      const answered = once(stream, 'end');
      const started = performance.now();
      for (let sent = 0; sent < bytes; sent += chunk.length) {
        const piece = bytes - sent >= chunk.length ? chunk : chunk.subarray(0, bytes - sent);
        if (!stream.write(piece)) await once(stream, 'drain');
      }
      stream.end();
      await answered;
      const ms = performance.now() - started;
      const received = Number(Buffer.concat(reply).toString());
      if (received !== bytes) throw new Error(`server counted ${received} bytes of ${bytes}`);
      return { ms, bytes: received };
    },
  },
);
