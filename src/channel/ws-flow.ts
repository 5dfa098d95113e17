/**
 * Backpressure for `ws` sockets. `WebSocket.send` never refuses data; whether the peer keeps up
 * shows on the underlying socket. One place reaches for it, so every writer waits the same way.
 */
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import { congested } from '../io/write-batch.js';

/** The transport under a ws WebSocket (ws keeps it as `_socket`). */
export function wsSocket(ws: WebSocket): Duplex {
  return (ws as unknown as { _socket: Duplex })._socket;
}

/** True for a WebSocket we accepted (its frames go out unmasked), false for one we dialed. */
export function wsIsServerSide(ws: WebSocket): boolean {
  return (ws as unknown as { _isServer: boolean })._isServer;
}

/** True when writers to this WebSocket should wait (see write-batch.ts). */
export function wsCongested(ws: WebSocket): boolean {
  const socket = wsSocket(ws);
  return socket !== undefined && congested(socket);
}

/** Run `next` now if the socket can take more, else once it drained (or closed). */
export function afterWsFlush(ws: WebSocket, next: () => void): void {
  const socket = wsSocket(ws);
  if (!socket || !congested(socket) || socket.destroyed) {
    next();
    return;
  }
  const done = () => {
    socket.off('drain', done);
    socket.off('close', done);
    next();
  };
  socket.on('drain', done);
  socket.on('close', done);
}
