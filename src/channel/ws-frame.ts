/**
 * Writing binary WebSocket frames ourselves (RFC 6455 §5.2): a channel message's channel byte is
 * folded into the frame header, so the payload is never copied to prepend it. Frames toward a
 * client go out unmasked with the payload untouched (header and payload in one write batch,
 * write-batch.ts); frames from our client side must be masked, which costs exactly one copy, into
 * heap buffers (small frames carved from slabs rather than allocated one by one). Writing beside
 * `ws` is safe: with compression off, `ws` writes every frame of its own whole and synchronously
 * too (checked at start-up against the installed `ws`, ws-internals.ts).
 */
import { randomFillSync } from 'node:crypto';
import type { Duplex } from 'node:stream';
import bufferutil from 'bufferutil';
import { batchWrites } from '../io/write-batch.js';

const OPCODE_TEXT = 0x1;
const OPCODE_BINARY = 0x2;
const FIN = 0x80;
const MASK_BIT = 0x80;

/** Masking keys come from a pool filled in batches (one syscall per 2,048 frames). */
const KEY_POOL_SIZE = 8 * 1024;
const keyPool = Buffer.allocUnsafe(KEY_POOL_SIZE);
let keyOffset = KEY_POOL_SIZE;
const rotated = Buffer.alloc(4);

function nextMask(): Buffer {
  if (keyOffset + 4 > KEY_POOL_SIZE) {
    randomFillSync(keyPool);
    keyOffset = 0;
  }
  const key = keyPool.subarray(keyOffset, keyOffset + 4);
  keyOffset += 4;
  return key;
}

/**
 * Small masked frames are carved from slabs; a slab is freed once no frame in it is referenced.
 * 64 KiB, below glibc's mmap threshold: slabs and the larger frames (a 32 KiB stdin message has a
 * buffer of its own) come from malloc's heap, whose freed memory is reused while it is still mapped.
 * 1 MiB slabs were fresh mappings each, and masking into them faulted in every page: 15 % more CPU
 * per GiB on stdin-spdy-* (bench, same window).
 */
const SLAB_SIZE = 64 * 1024;
let slab = Buffer.allocUnsafe(0);
let slabOffset = 0;

function frameBuffer(size: number): Buffer {
  if (size > SLAB_SIZE / 4) return Buffer.allocUnsafe(size);
  if (slabOffset + size > slab.length) {
    slab = Buffer.allocUnsafe(SLAB_SIZE);
    slabOffset = 0;
  }
  const out = slab.subarray(slabOffset, slabOffset + size);
  slabOffset += size;
  return out;
}

/** Bytes of the header (without masking key) for a payload of `length`. */
function headerSize(length: number): number {
  return length < 126 ? 2 : length < 0x10000 ? 4 : 10;
}

function writeHeader(out: Buffer, length: number, masked: boolean, opcode = OPCODE_BINARY): number {
  out[0] = FIN | opcode;
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

/**
 * One binary frame: `prefix` (a channel byte, or -1 for none) then `payload`, unmasked when
 * `server` (we accepted this WebSocket), masked otherwise.
 */
export function writeBinaryFrame(socket: Duplex, server: boolean, prefix: number, payload: Buffer): void {
  const extra = prefix >= 0 ? 1 : 0;
  const length = payload.length + extra;
  batchWrites(socket);
  if (server) {
    const head = Buffer.allocUnsafe(headerSize(length) + extra);
    const at = writeHeader(head, length, false);
    if (extra) head[at] = prefix;
    socket.write(head);
    if (payload.length > 0) socket.write(payload);
    return;
  }
  const frame = frameBuffer(headerSize(length) + 4 + length);
  let at = writeHeader(frame, length, true);
  const key = nextMask();
  key.copy(frame, at);
  at += 4;
  let mask = key;
  if (extra) {
    frame[at++] = prefix ^ key[0]!;
    // the payload continues the mask one byte on
    rotated[0] = key[1]!;
    rotated[1] = key[2]!;
    rotated[2] = key[3]!;
    rotated[3] = key[0]!;
    mask = rotated;
  }
  if (payload.length > 0) bufferutil.mask(payload, mask, frame, at, payload.length);
  socket.write(frame);
}

/**
 * A whole unmasked frame toward a client: text for a string (the base64 protocols), binary for a
 * Buffer — a message of our own that a relay puts into the stream it forwards. It copies the
 * message, which suits the odd message, not a data path.
 */
export function serverFrame(message: Buffer | string): Buffer {
  const text = typeof message === 'string';
  const length = text ? Buffer.byteLength(message) : message.length;
  const out = Buffer.allocUnsafe(headerSize(length) + length);
  const at = writeHeader(out, length, false, text ? OPCODE_TEXT : OPCODE_BINARY);
  if (text) out.write(message, at);
  else message.copy(out, at);
  return out;
}
