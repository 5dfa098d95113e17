/**
 * The soak's scripted upstream (bench/soak.ts starts it, kills it with SIGKILL and starts it again):
 * `tsx bench/soak-upstream.ts PORT`. Two pods: `spdy-only` refuses WebSocket upgrades and `ws-only`
 * refuses SPDY ones. exec echoes stdin on stdout and ends with Success once stdin ends; every
 * port-forward data stream echoes. SIGUSR1 stalls it: nothing is read for 2 s. It imports only
 * src/, so that the soak does not depend on anything else staying importable while it runs.
 */
import http, { type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import { encodeMessage } from '../src/channel/codec.js';
import { TunnelStream } from '../src/channel/tunnel.js';
import { acceptWebSocket, createWebSocketServer } from '../src/channel/ws-accept.js';
import { PORTFORWARD, RC_V4, RC_V5, splitProtocolHeader, TUNNEL_PORTFORWARD } from '../src/k8s/protocols.js';
import { SUCCESS_STATUS_JSON } from '../src/k8s/status.js';
import { SpdySession, type SpdyStream } from '../src/spdy/session.js';

const MiB = 1024 * 1024;

function runUpstream(port: number): void {
  const live = new Set<Duplex>();
  const wss = createWebSocketServer();
  const server = http.createServer((_req, res) => res.writeHead(404).end());
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    live.add(socket);
    socket.once('close', () => live.delete(socket));
    socket.on('error', () => {});
    const m = /^\/api\/v1\/namespaces\/[^/]+\/pods\/(spdy-only|ws-only)\/(exec|portforward)/.exec(
      req.url ?? '',
    );
    const websocket = /websocket/i.test(String(req.headers.upgrade));
    if (!m || (m[1] === 'ws-only') !== websocket) {
      socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    const portForward = m[2] === 'portforward';
    if (!websocket) {
      const offered = splitProtocolHeader(req.headers['x-stream-protocol-version']);
      const protocol = portForward ? PORTFORWARD : RC_V4;
      if (!offered.includes(protocol)) {
        socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
        return;
      }
      socket.write(
        `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: ${protocol}\r\n\r\n`,
      );
      const session = new SpdySession(socket, { role: 'server', head });
      if (portForward) servePortForward(session);
      else serveSpdyExec(session);
      return;
    }
    const offered = splitProtocolHeader(req.headers['sec-websocket-protocol']);
    const protocol = portForward ? TUNNEL_PORTFORWARD : RC_V5;
    if (!offered.includes(protocol)) {
      socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    void acceptWebSocket(wss, req, socket, head, protocol).then((ws) => {
      ws.on('error', () => {});
      if (portForward) servePortForward(new SpdySession(new TunnelStream(ws), { role: 'server' }));
      else serveWsExec(ws);
      ws.resume();
    });
  });
  // SIGUSR1: stall — read nothing for 2 s
  process.on('SIGUSR1', () => {
    const stalled = [...live];
    for (const s of stalled) s.pause();
    setTimeout(() => {
      for (const s of stalled) s.resume();
    }, 2000);
  });
  server.listen(port, '127.0.0.1', () => process.stdout.write('ready\n'));
}

/** exec: stdin comes back on stdout; stdin's end brings the Success status (docs/protocols.md §3.2). */
function serveSpdyExec(session: SpdySession): void {
  const streams = new Map<string, SpdyStream>();
  session.on('stream', (stream) => {
    stream.reply();
    streams.set(stream.streamType ?? '', stream);
    const stdout = streams.get('stdout');
    const stdin = streams.get('stdin');
    const error = streams.get('error');
    // a hostile (mutated) session may bring other stream types: it gets no echo
    if (streams.size !== 4 || !stdout || !stdin || !error) return;
    // stdin's end ends stdout; once all of it went out, the status, then the session closes
    stdin.pipe(stdout);
    stdout.once('finish', () => {
      error.write(SUCCESS_STATUS_JSON);
      session.close();
    });
  });
}

function serveWsExec(ws: WebSocket): void {
  ws.send(Buffer.from([1]));
  ws.on('message', (data: Buffer) => {
    if (data[0] === 0) {
      ws.send(encodeMessage(1, data.subarray(1), false));
      if (ws.bufferedAmount > MiB) {
        ws.pause();
        setImmediate(function again() {
          if (ws.bufferedAmount > MiB) setTimeout(again, 5);
          else ws.resume();
        });
      }
    } else if (data[0] === 255) {
      ws.send(encodeMessage(3, Buffer.from(SUCCESS_STATUS_JSON), false));
      ws.close(1000);
    }
  });
}

/** port-forward: each data stream echoes, half-close aware; error streams stay quiet (§4.1). */
function servePortForward(session: SpdySession): void {
  session.on('stream', (stream) => {
    stream.reply();
    if (stream.streamType === 'data') stream.pipe(stream);
    else stream.resume();
  });
}

runUpstream(Number(process.argv[2]));
