/**
 * System under test for "spdy-data": a SpdySession server. Every stream is accepted, its DATA is
 * counted and dropped; on the peer's FIN the count goes back as the stream's only DATA, then FIN.
 */
import { once } from 'node:events';
import { createServer } from 'node:net';
import { SpdySession } from '../../src/spdy/session.js';
import { serveWorker } from '../lib/worker.js';

const server = createServer({ allowHalfOpen: true }, (socket) => {
  const session = new SpdySession(socket, { role: 'server' });
  session.on('stream', (stream) => {
    stream.reply();
    let count = 0;
    stream.on('data', (d: Buffer) => {
      count += d.length;
    });
    stream.on('end', () => stream.end(String(count)));
  });
});
server.listen(0, '127.0.0.1');
await once(server, 'listening');
serveWorker({ port: (server.address() as { port: number }).port }, {});
