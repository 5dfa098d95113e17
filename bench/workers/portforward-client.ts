/**
 * Load generator: port-forward sessions as kubectl runs them (docs/protocols.md §4.1, §4.3), over a SPDY
 * upgrade or inside the WebSocket tunnel. One session per call (one kubectl), `connections`
 * forwarded connections at once, each like one kubectl accepts: an error stream half-closed at
 * once, a data stream, a download of `bytes` from the pod, RST_STREAM on the data stream when the
 * pod's side ended, and nothing on the error stream.
 */
import { once } from 'node:events';
import http from 'node:http';
import { TunnelStream } from '../../src/channel/tunnel.js';
import {
  HEADER_STREAM_PROTOCOL,
  PORTFORWARD,
  TUNNEL_PORTFORWARD,
  UPGRADE_SPDY,
} from '../../src/k8s/protocols.js';
import { SpdySession } from '../../src/spdy/session.js';
import { dialUpgrade, dialWebSocket } from '../../src/upstream/dial.js';
import { DOWNLOAD_PORT, PORTFORWARD_PATH } from '../lib/wire.js';
import { serveWorker } from '../lib/worker.js';

type Transport = 'spdy' | 'tunnel';

const agent = new http.Agent();
const dialOpts = { handshakeTimeoutMs: 60_000 };
let nextRequestId = 0;

async function openSession(base: string, transport: Transport): Promise<SpdySession> {
  const target = { url: new URL(base), agent };
  if (transport === 'spdy') {
    const d = await dialUpgrade(
      target,
      'POST',
      PORTFORWARD_PATH,
      { connection: 'Upgrade', upgrade: UPGRADE_SPDY, [HEADER_STREAM_PROTOCOL]: PORTFORWARD },
      dialOpts,
    );
    if (!d.ok) throw new Error(`port-forward refused: ${d.refusal.statusCode} ${d.refusal.body}`);
    return new SpdySession(d.socket, { role: 'client', head: d.head, pingIntervalMs: 5000 });
  }
  const d = await dialWebSocket(target, PORTFORWARD_PATH, [TUNNEL_PORTFORWARD], {}, dialOpts);
  if (!d.ok) throw new Error(`port-forward tunnel refused: ${d.refusal.statusCode} ${d.refusal.body}`);
  // kubectl pings every 10 s inside the tunnel (§4.3)
  return new SpdySession(new TunnelStream(d.ws), { role: 'client', pingIntervalMs: 10_000 });
}

async function download(session: SpdySession, bytes: number): Promise<void> {
  const headers = { port: String(DOWNLOAD_PORT), requestid: String(nextRequestId++) };
  const error = await session.openStream({ streamtype: 'error', ...headers });
  error.end();
  const errorText: Buffer[] = [];
  error.on('data', (chunk: Buffer) => errorText.push(chunk));
  const errorEnded = once(error, 'end');
  const data = await session.openStream({ streamtype: 'data', ...headers });
  let got = 0;
  data.on('data', (chunk: Buffer) => {
    got += chunk.length;
  });
  const dataEnded = once(data, 'end');
  data.write(`${bytes}\n`);
  await dataEnded;
  data.reset();
  await errorEnded;
  if (errorText.length > 0) throw new Error(`error stream: ${Buffer.concat(errorText)}`);
  if (got !== bytes) throw new Error(`forwarded ${got} bytes of ${bytes}`);
}

serveWorker(
  {},
  {
    /** One session, `connections` downloads of `bytes` each at once. */
    download: async (p) => {
      const { url, transport, connections, bytes } = p as {
        url: string;
        transport: Transport;
        connections: number;
        bytes: number;
      };
      const started = performance.now();
      const session = await openSession(url, transport);
      try {
        await Promise.all(Array.from({ length: connections }, () => download(session, bytes)));
      } finally {
        session.close();
      }
      return { ms: performance.now() - started, bytes: connections * bytes };
    },
  },
);
