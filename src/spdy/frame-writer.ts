/**
 * SPDY/3 frame serialization (docs/protocols.md §6.1). A frame is a small header buffer plus the
 * untouched payload; the session writes the two together (cork), so DATA payloads are never copied.
 * Only the frame types Kubernetes peers accept are produced: never HEADERS, SETTINGS or
 * WINDOW_UPDATE (§8.4).
 */
import { FRAME_HEADER_SIZE, FrameType, SPDY_VERSION } from './constants.js';

/** The 8-byte header of a DATA frame (allocUnsafe of 8 bytes comes from Node's shared pool). */
export function dataFrameHeader(streamId: number, flags: number, length: number): Buffer {
  const h = Buffer.allocUnsafe(FRAME_HEADER_SIZE);
  h.writeUInt32BE(streamId & 0x7fffffff, 0);
  h.writeUInt32BE(((flags & 0xff) << 24) | length, 4);
  return h;
}

function controlFrame(type: number, flags: number, bodyLength: number): Buffer {
  const f = Buffer.allocUnsafe(FRAME_HEADER_SIZE + bodyLength);
  f.writeUInt16BE(0x8000 | SPDY_VERSION, 0);
  f.writeUInt16BE(type, 2);
  f.writeUInt32BE(((flags & 0xff) << 24) | bodyLength, 4);
  return f;
}

export function synStreamFrame(
  streamId: number,
  flags: number,
  priority: number,
  headerBlock: Buffer,
): Buffer {
  const f = controlFrame(FrameType.SYN_STREAM, flags, 10 + headerBlock.length);
  f.writeUInt32BE(streamId & 0x7fffffff, 8);
  f.writeUInt32BE(0, 12); // associated-to
  f[16] = (priority & 0x7) << 5;
  f[17] = 0; // slot
  headerBlock.copy(f, 18);
  return f;
}

export function synReplyFrame(streamId: number, flags: number, headerBlock: Buffer): Buffer {
  const f = controlFrame(FrameType.SYN_REPLY, flags, 4 + headerBlock.length);
  f.writeUInt32BE(streamId & 0x7fffffff, 8);
  headerBlock.copy(f, 12);
  return f;
}

export function rstStreamFrame(streamId: number, status: number): Buffer {
  const f = controlFrame(FrameType.RST_STREAM, 0, 8);
  f.writeUInt32BE(streamId & 0x7fffffff, 8);
  f.writeUInt32BE(status, 12);
  return f;
}

export function pingFrame(id: number): Buffer {
  const f = controlFrame(FrameType.PING, 0, 4);
  f.writeUInt32BE(id >>> 0, 8);
  return f;
}

export function goAwayFrame(lastGoodStreamId: number, status: number): Buffer {
  const f = controlFrame(FrameType.GOAWAY, 0, 8);
  f.writeUInt32BE(lastGoodStreamId & 0x7fffffff, 8);
  f.writeUInt32BE(status, 12);
  return f;
}
