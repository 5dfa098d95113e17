/**
 * Writing to sockets efficiently: batches and the congestion rule.
 *
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

/**
 * How much a socket may hold unwritten before its writers wait for 'drain'. Node's own mark (16 KiB
 * for sockets) is below one 32 KiB frame: a writer honouring it would pause after every frame and
 * undo the batching above. Bounded all the same: this much per socket, then backpressure.
 */
export const WRITE_BUFFER_LIMIT = 128 * 1024;

/** True when writers should wait for the socket's 'drain' (which follows, since write returned false). */
export function congested(socket: Writable): boolean {
  return socket.writableLength >= WRITE_BUFFER_LIMIT;
}
