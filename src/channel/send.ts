/**
 * Sending one channel chunk as WebSocket messages: one unfragmented message per piece of at most
 * 32 KiB, which is what the apiserver sends (its io.Copy buffer, protocols.md §5.2). Some clients
 * read one message into a 32 KiB buffer and lose the rest of a bigger one (§9, python#2651).
 */
import type { WebSocket } from 'ws';
import { encodeMessage } from './codec.js';

export const MAX_CHANNEL_MESSAGE = 32 * 1024;

/** Send `payload` on `channel`; an empty payload is one empty message (the established marker). */
export function sendChannel(ws: WebSocket, channel: number, payload: Buffer, base64: boolean): void {
  if (ws.readyState !== ws.OPEN) return;
  let off = 0;
  do {
    const piece =
      payload.length <= MAX_CHANNEL_MESSAGE ? payload : payload.subarray(off, off + MAX_CHANNEL_MESSAGE);
    ws.send(encodeMessage(channel, piece, base64), { binary: !base64 });
    off += MAX_CHANNEL_MESSAGE;
  } while (off < payload.length);
}
