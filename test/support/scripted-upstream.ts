/**
 * Scripted upstreams for bridge tests: a SPDY exec server and a WebSocket exec server whose
 * behaviour after setup is a test's script (echo, a chosen status, a mid-stream drop …). They answer
 * the upgrade the way docs/protocols.md §2 describes and nothing else; the emulator is the faithful one.
 */
import http, { type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';
import { splitProtocolHeader } from '../../src/k8s/protocols.js';
import { SpdySession, type SpdyStream } from '../../src/spdy/session.js';

export interface SpdyExecSide {
  session: SpdySession;
  socket: Duplex;
  streams: Map<string, SpdyStream>;
  query: URLSearchParams;
}

export interface Upstream {
  url: string;
  /** Upgraded connections still open. */
  sockets: Set<Duplex>;
  /** Stop listening and end every open connection. */
  close(): Promise<void>;
}

/** Track an upgraded connection until it closes. */
function track(sockets: Set<Duplex>, socket: Duplex): void {
  sockets.add(socket);
  socket.once('close', () => sockets.delete(socket));
  socket.on('error', () => {});
}

function listen(server: http.Server, sockets: Set<Duplex>): Promise<Upstream> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as AddressInfo).port;
      resolve({
        url: `http://127.0.0.1:${port}`,
        sockets,
        close: () =>
          new Promise((r) => {
            for (const socket of sockets) socket.destroy();
            server.closeAllConnections();
            server.close(() => r());
          }),
      });
    });
  });
}

/** A SPDY exec upstream: negotiates `version`, waits for the streams the query promises, runs `script`. */
export function startSpdyExecUpstream(
  script: (side: SpdyExecSide) => void,
  version = 'v4.channel.k8s.io',
): Promise<Upstream> {
  const sockets = new Set<Duplex>();
  const server = http.createServer((_req, res) => res.writeHead(404).end());
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    track(sockets, socket);
    const offered = splitProtocolHeader(req.headers['x-stream-protocol-version']);
    if (!offered.includes(version)) {
      socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: ${version}\r\n\r\n`,
    );
    const query = new URL(req.url ?? '/', 'http://x').searchParams;
    const t = (k: string) => query.get(k) === 'true' || query.get(k) === '1';
    const expected = 1 + +t('stdin') + +t('stdout') + +(t('stderr') && !t('tty')) + +t('tty');
    const session = new SpdySession(socket, { role: 'server', head });
    const streams = new Map<string, SpdyStream>();
    session.on('stream', (stream) => {
      stream.reply();
      streams.set(stream.streamType ?? '', stream);
      if (streams.size === expected) script({ session, socket, streams, query });
    });
  });
  return listen(server, sockets);
}

export interface WsExecSide {
  ws: WebSocket;
  protocol: string;
  query: URLSearchParams;
}

/** A WebSocket exec upstream accepting `protocols` (first client offer it knows wins), running `script`. */
export function startWsExecUpstream(
  script: (side: WsExecSide) => void,
  protocols = ['v5.channel.k8s.io'],
): Promise<Upstream> {
  const sockets = new Set<Duplex>();
  const server = http.createServer((_req, res) => res.writeHead(404).end());
  const wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    handleProtocols: (offered) => [...offered].find((p) => protocols.includes(p)) ?? false,
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    track(sockets, socket);
    const offered = splitProtocolHeader(req.headers['sec-websocket-protocol']);
    if (!offered.some((p) => protocols.includes(p))) {
      socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('error', () => {});
      const query = new URL(req.url ?? '/', 'http://x').searchParams;
      ws.send(Buffer.from([1])); // established marker
      script({ ws, protocol: ws.protocol, query });
    });
  });
  return listen(server, sockets);
}
