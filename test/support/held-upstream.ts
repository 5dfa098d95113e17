/**
 * An upstream that holds every upgrade until the test says how to answer it: the way to put a
 * client's reset at an exact step of a handshake without sleeping. Each upgrade request is queued;
 * `next()` waits for one, and `answer101()` or `refuse()` answers it the way a SPDY or WebSocket
 * server would. Upgraded connections are tracked until they close.
 */
import { createHash } from 'node:crypto';
import http, { type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket } from 'ws';
import { waitFor } from './wait.js';

export interface HeldUpgrade {
  req: IncomingMessage;
  socket: Duplex;
  /** Switch protocols as the request asked: SPDY with `protocol` in X-Stream-Protocol-Version, or a WebSocket choosing it. */
  answer101(protocol: string): void;
  refuse(status: number): void;
}

export interface HeldUpstream {
  url: string;
  /** Upgrade requests received so far. */
  received: number;
  /** Connections (upgraded or not) still open. */
  open: Set<Duplex>;
  next(): Promise<HeldUpgrade>;
  close(): Promise<void>;
}

type ServerSideWebSocket = new (
  address: null,
  protocols: undefined,
  options: object,
) => WebSocket & { setSocket(socket: Duplex, head: Buffer, options: { maxPayload: number }): void };

export async function startHeldUpstream(): Promise<HeldUpstream> {
  const queue: HeldUpgrade[] = [];
  const open = new Set<Duplex>();
  const server = http.createServer((_req, res) => res.writeHead(404).end());
  const self: HeldUpstream = {
    url: '',
    received: 0,
    open,
    next: async () => waitFor('an upgrade at the held upstream', () => queue.shift(), 10_000, 5),
    close: () =>
      new Promise<void>((r) => {
        for (const s of open) s.destroy();
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
  server.on('connection', (socket: Duplex) => {
    open.add(socket);
    socket.once('close', () => open.delete(socket));
    socket.on('error', () => {});
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
    self.received++;
    // read (and drop) whatever comes, so that the peer closing is noticed at once
    socket.resume();
    // an HTTP server's sockets are half-open: close with the peer, as an API server does
    socket.once('end', () => socket.destroy());
    queue.push({
      req,
      socket,
      answer101(protocol) {
        if (/spdy/i.test(String(req.headers.upgrade))) {
          socket.write(
            `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: ${protocol}\r\n\r\n`,
          );
          return;
        }
        const accept = createHash('sha1')
          .update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`)
          .digest('base64');
        socket.write(
          `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: ${accept}\r\n` +
            `${protocol ? `Sec-WebSocket-Protocol: ${protocol}\r\n` : ''}\r\n`,
        );
        // a WebSocket peer that answers pings and closing handshakes, as a real server does
        // (ws's server-side constructor: no address, a socket set afterwards; untyped in @types/ws)
        const ws = new (WebSocket as unknown as ServerSideWebSocket)(null, undefined, {});
        ws.on('error', () => {});
        ws.setSocket(socket, Buffer.alloc(0), { maxPayload: 32 * 1024 * 1024 });
      },
      refuse(status) {
        socket.end(
          `HTTP/1.1 ${status} Refused\r\nContent-Type: text/plain\r\nContent-Length: 7\r\n\r\nrefused`,
        );
      },
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  self.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return self;
}
