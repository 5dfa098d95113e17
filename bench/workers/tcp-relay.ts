/**
 * Baseline relay: a plain Node TCP relay, every accepted connection piped both ways to `target`
 * on 127.0.0.1. What a byte-moving proxy costs with nothing but Node streams.
 */
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import { serveWorker, workerParams } from '../lib/worker.js';

const { target } = workerParams() as { target: number };
const server = createServer((client) => {
  const upstream = connect({ port: target, host: '127.0.0.1' });
  client.pipe(upstream);
  upstream.pipe(client);
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
});
server.listen(0, '127.0.0.1');
await once(server, 'listening');
serveWorker({ port: (server.address() as { port: number }).port }, {});
