/**
 * One system call per input chunk instead of one per frame. Everything a bridge writes while it
 * handles one received chunk happens in the same tick; the first write of a tick corks the socket
 * and the tick's end uncorks it, so the frames leave together in one writev. Nothing waits beyond
 * the current tick, so latency is unchanged.
 */
import type { Writable } from 'node:stream';

function uncork(socket: Writable): void {
  socket.uncork();
}

/** Call before writing to `socket`; idempotent within a tick (and within someone else's cork). */
export function batchWrites(socket: Writable): void {
  if (socket.writableCorked > 0) return;
  socket.cork();
  process.nextTick(uncork, socket);
}
