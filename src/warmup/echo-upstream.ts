/**
 * The warm-up's upstream: an API server that knows one exec, `cat`, over SPDY (v4) and WebSocket
 * (v5), built from the shim's own endpoints (src/remotecommand) with stdin piped to stdout. No
 * process, no pod, no credentials. It listens on 127.0.0.1 for the warm-up's few seconds, answers
 * only on a path holding a random secret (anything else is a 404), and closes every connection it
 * accepted when it closes.
 */
import { randomBytes } from 'node:crypto';
import http, { type IncomingMessage } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { acceptWebSocket, createWebSocketServer } from '../channel/ws-accept.js';
import { RC_V4, RC_V5, remoteCommandVersion, splitProtocolHeader } from '../k8s/protocols.js';
import { successStatus } from '../k8s/status.js';
import { execStreams } from '../k8s/stream-request.js';
import { pipe, type Sink, type Source } from '../remotecommand/flow.js';
import { SpdyEndpoint } from '../remotecommand/spdy-endpoint.js';
import { acceptSpdy, negotiateSpdy } from '../remotecommand/spdy-handshake.js';
import { STREAM_CREATION_TIMEOUT_MS } from '../remotecommand/streams.js';
import { WsEndpoint } from '../remotecommand/ws-endpoint.js';
import { SpdySession } from '../spdy/session.js';

export interface EchoUpstream {
  url: string;
  /** The exec path it answers: `cat` in a pod whose name holds the secret. */
  execPath: string;
  close(): Promise<void>;
}

const SUCCESS = { status: successStatus() };
const V4 = remoteCommandVersion(RC_V4)!;
const V5 = remoteCommandVersion(RC_V5)!;
const ignore = () => {};

export async function startEchoUpstream(): Promise<EchoUpstream> {
  const pod = `warm-up-${randomBytes(16).toString('hex')}`;
  const prefix = `/api/v1/namespaces/kubeshim/pods/${pod}/exec?`;
  const execPath = `${prefix}command=cat&stdin=true&stdout=true&stderr=true`;
  const wss = createWebSocketServer();
  const sockets = new Set<Socket>();
  const server = http.createServer((_req, res) => res.writeHead(404).end());
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', ignore);
    if (!req.url?.startsWith(prefix)) {
      socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    const wants = execStreams(new URL(req.url, 'http://upstream').searchParams);
    if (String(req.headers.upgrade).toLowerCase() === 'websocket') {
      const offered = splitProtocolHeader(req.headers['sec-websocket-protocol']);
      if (!offered.includes(RC_V5)) return void socket.destroy();
      acceptWebSocket(wss, req, socket, head, RC_V5).then((ws) => {
        const endpoint: WsEndpoint = new WsEndpoint(ws, {
          version: V5,
          wants,
          dropUndecodable: false,
          onProtocolError: ignore,
          onClose: ignore,
        });
        echo(endpoint.stdin, endpoint.stdout, () => endpoint.finish(SUCCESS));
        endpoint.start();
      }, ignore);
      return;
    }
    const negotiated = negotiateSpdy(req, [RC_V4]);
    if (!negotiated.ok) return void socket.destroy();
    acceptSpdy(socket, negotiated.protocol);
    const endpoint: SpdyEndpoint = new SpdyEndpoint(new SpdySession(socket, { role: 'server', head }), {
      version: V4,
      wants,
      waitMs: STREAM_CREATION_TIMEOUT_MS,
      onReady: () => echo(endpoint.stdin, endpoint.stdout, () => void endpoint.finish(SUCCESS)),
      onTimeout: () => socket.destroy(),
      onClose: ignore,
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    execPath,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** `cat`: stdin piped to stdout (flow.ts); the status once stdin ends. */
function echo(stdin: Source | undefined, stdout: Sink | undefined, done: () => void): void {
  if (!stdin || !stdout) {
    done();
    return;
  }
  pipe(
    stdin,
    { write: (c) => stdout.write(c), afterFlush: (next) => stdout.afterFlush(next), end: done },
    ignore,
  );
}
