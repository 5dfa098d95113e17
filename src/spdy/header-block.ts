/**
 * SPDY/3 header blocks (docs/protocols.md §6.2): a name/value block compressed with zlib and the
 * SPDY/3 dictionary, one compression context per direction per session, never reset.
 *
 * Neither side keeps a zlib context alive between frames, so an idle session holds no zlib memory:
 * - Encoding emits stored (uncompressed) deflate blocks. They are valid zlib for every inflater,
 *   reference nothing, and so need no deflate state at all; only the first block carries the zlib
 *   header with the dictionary id. Each frame's block ends with the sync-flush marker (an empty
 *   stored block) as a sync-flushing writer's would: Go's flate reader hands out a stored block's
 *   bytes only at the next flush point, else it reads on past the frame and spdystream fails from
 *   the second header block on (kubectl times out waiting for SYN_REPLY).
 * - Decoding keeps the inflated history (dictionary + everything inflated so far, last 32 KiB) and
 *   inflates each block with a short-lived raw inflater primed with that history. This works
 *   because every SPDY writer ends each block with a sync flush, so each frame starts on a
 *   deflate block boundary. The output per block is capped (zlib bombs).
 */
import { constants, inflateRawSync } from 'node:zlib';
import { SpdyProtocolError } from './constants.js';
import { SPDY3_DICTIONARY, SPDY3_DICTIONARY_ID } from './dictionary.js';

export type HeaderMap = Record<string, string>;

/** zlib header for a deflate stream with a 32 KiB window and a preset dictionary (FDICT). */
const ZLIB_HEADER = Buffer.from([0x78, 0xf9, 0xe3, 0xc6, 0xa7, 0xc2]);
const WINDOW = 32 * 1024;
const STORED_MAX = 0xffff;
/** An empty non-final stored block: what Z_SYNC_FLUSH appends (§6.2). */
const SYNC_MARKER = Buffer.from([0x00, 0x00, 0x00, 0xff, 0xff]);

/** Serialize a header map into an uncompressed SPDY/3 name/value block (32-bit lengths). */
export function serializeHeaderBlock(headers: HeaderMap): Buffer {
  const entries = Object.entries(headers);
  let size = 4;
  const encoded: [Buffer, Buffer][] = [];
  for (const [name, value] of entries) {
    const n = Buffer.from(name.toLowerCase(), 'utf8');
    const v = Buffer.from(value, 'utf8');
    encoded.push([n, v]);
    size += 8 + n.length + v.length;
  }
  const out = Buffer.allocUnsafe(size);
  out.writeUInt32BE(encoded.length, 0);
  let off = 4;
  for (const [n, v] of encoded) {
    out.writeUInt32BE(n.length, off);
    n.copy(out, off + 4);
    off += 4 + n.length;
    out.writeUInt32BE(v.length, off);
    v.copy(out, off + 4);
    off += 4 + v.length;
  }
  return out;
}

/**
 * Parse an uncompressed name/value block. Names are case-insensitive (receivers canonicalize,
 * §6.2), so they are lowercased here; a repeated name joins its values with NUL as SPDY does.
 */
export function parseHeaderBlock(block: Buffer, maxPairs: number): HeaderMap {
  const fail = (why: string): never => {
    throw new SpdyProtocolError(`malformed header block: ${why}`);
  };
  if (block.length < 4) fail('shorter than its pair count');
  const count = block.readUInt32BE(0);
  if (count > maxPairs) fail(`${count} pairs exceed the limit of ${maxPairs}`);
  const headers: HeaderMap = Object.create(null);
  let off = 4;
  const readString = (): string => {
    if (off + 4 > block.length) fail('truncated length');
    const len = block.readUInt32BE(off);
    off += 4;
    if (off + len > block.length) fail('truncated string');
    const s = block.toString('utf8', off, off + len);
    off += len;
    return s;
  };
  for (let i = 0; i < count; i++) {
    const name = readString().toLowerCase();
    if (name.length === 0) fail('empty header name');
    const value = readString();
    headers[name] = name in headers ? `${headers[name]}\0${value}` : value;
  }
  if (off !== block.length) fail(`${block.length - off} trailing bytes`);
  return headers;
}

/** Compressor for one direction of one session: stored deflate blocks, no zlib state. */
export class HeaderCompressor {
  private started = false;

  compress(headers: HeaderMap): Buffer {
    const raw = serializeHeaderBlock(headers);
    const blocks = Math.max(1, Math.ceil(raw.length / STORED_MAX));
    const prefix = this.started ? 0 : ZLIB_HEADER.length;
    const out = Buffer.allocUnsafe(prefix + blocks * 5 + raw.length + SYNC_MARKER.length);
    let off = 0;
    if (!this.started) {
      ZLIB_HEADER.copy(out, 0);
      off = prefix;
      this.started = true;
    }
    for (let pos = 0; pos < raw.length || off === prefix; ) {
      const len = Math.min(STORED_MAX, raw.length - pos);
      out[off] = 0x00; // BFINAL=0, BTYPE=00 (stored), padded to the byte boundary
      out.writeUInt16LE(len, off + 1);
      out.writeUInt16LE(~len & 0xffff, off + 3);
      raw.copy(out, off + 5, pos, pos + len);
      off += 5 + len;
      pos += len;
    }
    SYNC_MARKER.copy(out, off);
    return out;
  }
}

/** Decompressor for one direction of one session; holds only the inflated history. */
export class HeaderDecompressor {
  private history: Buffer | null = null;

  constructor(
    private readonly maxInflated: number,
    private readonly maxPairs: number,
  ) {}

  decompress(compressed: Buffer): HeaderMap {
    let data = compressed;
    if (this.history === null) {
      if (data.length < ZLIB_HEADER.length)
        throw new SpdyProtocolError('header block shorter than the zlib header');
      const cmf = data[0]!;
      const flg = data[1]!;
      if ((cmf & 0x0f) !== 8 || cmf >> 4 > 7 || ((cmf << 8) | flg) % 31 !== 0 || (flg & 0x20) === 0) {
        throw new SpdyProtocolError('header block does not start with a zlib header using a dictionary');
      }
      if (data.readUInt32BE(2) !== SPDY3_DICTIONARY_ID)
        throw new SpdyProtocolError('header block uses an unknown zlib dictionary');
      data = data.subarray(ZLIB_HEADER.length);
      this.history = SPDY3_DICTIONARY;
    }
    let out: Buffer;
    try {
      out = inflateRawSync(data, {
        dictionary: this.history,
        finishFlush: constants.Z_SYNC_FLUSH,
        maxOutputLength: this.maxInflated,
      });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ERR_BUFFER_TOO_LARGE') {
        throw new SpdyProtocolError(`header block inflates beyond ${this.maxInflated} bytes`);
      }
      throw new SpdyProtocolError(`header block does not inflate: ${(err as Error).message}`);
    }
    this.remember(out);
    return parseHeaderBlock(out, this.maxPairs);
  }

  private remember(out: Buffer): void {
    if (out.length === 0) return;
    const prev = this.history!;
    if (out.length >= WINDOW) {
      this.history = Buffer.from(out.subarray(out.length - WINDOW));
      return;
    }
    const keep = Math.min(prev.length, WINDOW - out.length);
    const next = Buffer.allocUnsafe(keep + out.length);
    prev.copy(next, 0, prev.length - keep);
    out.copy(next, keep);
    this.history = next;
  }
}
