/**
 * Writing a binary channel message as one WebSocket frame with the channel byte folded into the
 * frame header, so the payload is never copied to prepend it (RFC 6455 §5.2). Frames toward a
 * client go out unmasked and the payload untouched (header and payload written together, corked);
 * frames from our client side must be masked, which costs exactly one copy. Writing beside `ws` is
 * safe: with compression off, `ws` writes every frame of its own whole and synchronously too.
 */
import { randomFillSync } from 'node:crypto';
import type { Duplex } from 'node:stream';
import bufferutil from 'bufferutil';

const OPCODE_BINARY = 0x2;
const FIN = 0x80;
const MASK_BIT = 0x80;

/** Masking keys come from a pool filled in batches (one syscall per 2,048 frames). */
const POOL_SIZE = 8 * 1024;
const pool = Buffer.allocUnsafe(POOL_SIZE);
let poolOffset = POOL_SIZE;
const rotated = Buffer.alloc(4);

function nextMask(): Buffer {
  if (poolOffset + 4 > POOL_SIZE) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const key = pool.subarray(poolOffset, poolOffset + 4);
  poolOffset += 4;
  return key;
}

/** Bytes of the header (without masking key) for a payload of `length`. */
function headerSize(length: number): number {
  return length < 126 ? 2 : length < 0x10000 ? 4 : 10;
}

function writeHeader(out: Buffer, length: number, masked: boolean): number {
  out[0] = FIN | OPCODE_BINARY;
  const m = masked ? MASK_BIT : 0;
  if (length < 126) {
    out[1] = m | length;
    return 2;
  }
  if (length < 0x10000) {
    out[1] = m | 126;
    out.writeUInt16BE(length, 2);
    return 4;
  }
  out[1] = m | 127;
  out.writeUInt32BE(Math.floor(length / 0x100000000), 2);
  out.writeUInt32BE(length >>> 0, 6);
  return 10;
}

/** One unmasked binary frame `[channel] + payload` (server → client). The payload is not copied. */
export function writeServerChannelFrame(socket: Duplex, channel: number, payload: Buffer): void {
  const length = payload.length + 1;
  const head = Buffer.allocUnsafe(headerSize(length) + 1);
  const at = writeHeader(head, length, false);
  head[at] = channel;
  if (payload.length === 0) {
    socket.write(head);
    return;
  }
  socket.cork();
  socket.write(head);
  socket.write(payload);
  socket.uncork();
}

/** One masked binary frame `[channel] + payload` (client → server): header, key and masked bytes in one buffer. */
export function writeClientChannelFrame(socket: Duplex, channel: number, payload: Buffer): void {
  const length = payload.length + 1;
  const frame = Buffer.allocUnsafe(headerSize(length) + 4 + length);
  let at = writeHeader(frame, length, true);
  const key = nextMask();
  key.copy(frame, at);
  at += 4;
  frame[at] = channel ^ key[0]!;
  // the payload continues the mask one byte on
  rotated[0] = key[1]!;
  rotated[1] = key[2]!;
  rotated[2] = key[3]!;
  rotated[3] = key[0]!;
  if (payload.length > 0) bufferutil.mask(payload, rotated, frame, at + 1, payload.length);
  socket.write(frame);
}
