/**
 * Sending one channel chunk as WebSocket messages: one unfragmented message per piece of at most
 * 32 KiB, which is what the apiserver sends (its io.Copy buffer, docs/protocols.md §5.2). Some clients
 * read one message into a 32 KiB buffer and lose the rest of a bigger one (§9, python#2651).
 * Binary messages are written as frames of our own (ws-frame.ts), which avoid copying the payload.
 */
import type { WebSocket } from 'ws';
import { encodeBase64 } from './codec.js';
import { writeBinaryFrame } from './ws-frame.js';
import { wsIsServerSide, wsSocket } from './ws-internals.js';

export const MAX_CHANNEL_MESSAGE = 32 * 1024;

/** Send `payload` on `channel`; an empty payload is one empty message (the established marker). */
export function sendChannel(ws: WebSocket, channel: number, payload: Buffer, base64: boolean): void {
  if (ws.readyState !== ws.OPEN) return;
  for (let off = 0; off === 0 || off < payload.length; off += MAX_CHANNEL_MESSAGE) {
    const piece =
      payload.length <= MAX_CHANNEL_MESSAGE ? payload : payload.subarray(off, off + MAX_CHANNEL_MESSAGE);
    if (base64) ws.send(encodeBase64(channel, piece), { binary: false });
    else writeBinaryFrame(wsSocket(ws), wsIsServerSide(ws), channel, piece);
  }
}
