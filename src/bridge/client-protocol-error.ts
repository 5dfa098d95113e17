/**
 * A WebSocket client that breaks the protocol, named in its session's closeReason. For what ws
 * finds wrong in the client's frames (an invalid frame, a message over the size limit) it emits
 * 'error', then closes with 1002 or 1009, and 'close' says only 1006: the error is the reason.
 * On an accepted WebSocket ws emits 'error' for nothing else (transport errors just close it).
 */
import type { WebSocket } from 'ws';

/** The closeReason of a session whose client broke the protocol. */
export function clientProtocolError(message: string): string {
  return `client protocol error: ${message}`;
}

/** Call `end` with the reason when ws finds a protocol error in the client's frames. */
export function onClientProtocolError(client: WebSocket, end: (reason: string) => void): void {
  client.on('error', (err: Error) => end(clientProtocolError(err.message)));
}
