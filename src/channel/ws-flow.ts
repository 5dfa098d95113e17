/**
 * Backpressure for `ws` sockets. `WebSocket.send` never refuses data; whether the peer keeps up
 * shows on the underlying socket (reached through ws-internals.ts). One place waits on it, so every
 * writer waits the same way.
 */
import type { WebSocket } from 'ws';
import { congested } from '../io/write-batch.js';
import { wsSocket } from './ws-internals.js';

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
