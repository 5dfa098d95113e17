/**
 * Baseline "relay": a plain Node TCP relay, every accepted connection piped both ways to the
 * upstream. What a byte-moving proxy costs with nothing but Node streams — the practical limit of a
 * Node proxy on this machine, the figure the shim is compared with. Nagle is off on both legs, as
 * the shim and the ws library have it.
 */
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import { serveWorker, workerParams } from '../lib/worker.js';

const target = new URL(workerParams<{ target: string }>().target);
const server = createServer({ noDelay: true }, (client) => {
  const upstream = connect({ port: Number(target.port), host: target.hostname, noDelay: true });
  client.pipe(upstream);
  upstream.pipe(client);
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
});
server.listen(0, '127.0.0.1');
await once(server, 'listening');
serveWorker({ url: `http://127.0.0.1:${(server.address() as { port: number }).port}` }, {});
