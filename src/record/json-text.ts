/**
 * Output bytes as the JSON string of an asciicast event, written straight from the bytes into a
 * buffer: valid UTF-8 is kept as it is and only `"`, `\` and control characters are escaped (JSON,
 * RFC 8259 §7), so no string is built for a recorded chunk.
 *
 * This runs for every recorded byte, so it is written for speed: valid UTF-8 goes through a
 * WebAssembly SIMD kernel, 16 bytes at a time (json-escape-simd.ts); where WebAssembly does not run,
 * through JS that looks at four bytes at a time and copies four that need no escape as one word
 * (bench/json-escape-cost.ts measures the two). Bytes that are not valid UTF-8 (binary output) are
 * decoded here, with one U+FFFD for each maximal part of a sequence that is not a character, as the
 * WHATWG decoder (and so Buffer#toString, and a terminal) shows them. A character split across two
 * chunks is put back together.
 */
import { isUtf8 } from 'node:buffer';
import { simdWriter, type ValidWriter } from './json-escape-simd.js';

const HEX = '0123456789abcdef';
const SHORT: Record<number, string> = {
  8: '\\b',
  9: '\\t',
  10: '\\n',
  12: '\\f',
  13: '\\r',
  34: '\\"',
  92: '\\\\',
};
/** Length of each byte's escape (0: none needed), and the escape at ESCAPE_BYTES[byte * 8]. */
const ESCAPE_LENGTH = new Uint8Array(256);
const ESCAPE_BYTES = new Uint8Array(256 * 8);
for (let b = 0; b < 256; b++) {
  const text = SHORT[b] ?? (b < 0x20 ? `\\u00${HEX[b >> 4]}${HEX[b & 15]}` : '');
  ESCAPE_LENGTH[b] = text.length;
  for (let k = 0; k < text.length; k++) ESCAPE_BYTES[b * 8 + k] = text.charCodeAt(k);
}
/** U+FFFD REPLACEMENT CHARACTER in UTF-8. */
const REPLACEMENT = [0xef, 0xbf, 0xbd] as const;

/** The most bytes `bytes` can take once written by JsonText: every byte a six-byte escape. */
export function maxJsonLength(bytes: number): number {
  return bytes * 6 + 8;
}

let fastest: ValidWriter | undefined;
/** The writer of valid UTF-8 on this thread: the SIMD kernel (compiled on first use), else JS. */
export function fastestValidWriter(): ValidWriter {
  fastest ??= simdWriter(ESCAPE_BYTES, ESCAPE_LENGTH) ?? writeValidWords;
  return fastest;
}

/** One output stream's text: carries a character cut at a chunk's end over to the next chunk. */
export class JsonText {
  /** The start of a character cut at the last chunk's end, with what came of it since. */
  private readonly carry = Buffer.alloc(8);
  private carried = 0;

  /** `writeValid`: how valid UTF-8 is written (not the fastest only where the two are compared). */
  constructor(private readonly writeValid: ValidWriter = fastestValidWriter()) {}

  /**
   * Write `chunk`'s text (no quotes) into `out` at `at`, which has room for
   * maxJsonLength(chunk.length) + 3 more bytes; returns where it ends.
   */
  write(chunk: Buffer, out: Buffer, at: number): number {
    let body = chunk;
    if (this.carried > 0) {
      // the rest of the cut character: up to three continuation bytes
      let k = 0;
      while (k < 3 && k < body.length && (body[k]! & 0xc0) === 0x80) k++;
      body.copy(this.carry, this.carried, 0, k);
      const joined = this.carry.subarray(0, this.carried + k);
      const short = sequenceLength(joined[0]!) > joined.length;
      // still short, and the chunk held nothing else: the rest may come with the next one
      if (short && k === body.length) {
        this.carried = joined.length;
        return at;
      }
      this.carried = 0;
      body = body.subarray(k);
      at = short ? writeDecoded(joined, out, at) : this.writeText(joined, out, at);
    }
    const cut = incompleteTail(body);
    if (cut > 0) {
      this.carried = body.copy(this.carry, 0, body.length - cut);
      body = body.subarray(0, body.length - cut);
    }
    return this.writeText(body, out, at);
  }

  /** Write `bytes` escaped, whole characters or bytes that are none. */
  private writeText(bytes: Buffer, out: Buffer, at: number): number {
    return isUtf8(bytes) ? this.writeValid(bytes, out, at) : writeDecoded(bytes, out, at);
  }
}

/** Whether any of the four bytes of `w` is below 0x20, `"` or `\` (bit tricks on 32-bit words). */
function needsEscape(w: number): boolean {
  const quote = w ^ 0x22222222;
  const backslash = w ^ 0x5c5c5c5c;
  const marks =
    ((w - 0x20202020) & ~w) | ((quote - 0x01010101) & ~quote) | ((backslash - 0x01010101) & ~backslash);
  return (marks & 0x80808080) !== 0;
}

/** Valid UTF-8: copied as it is, a word (four bytes) at a time while none needs an escape. */
export function writeValidWords(bytes: Buffer, out: Buffer, at: number): number {
  const n = bytes.length;
  const from = viewOf(bytes, 0);
  const to = viewOf(out, 1);
  const base = bytes.byteOffset;
  const outBase = out.byteOffset;
  let i = 0;
  while (i < n) {
    while (i + 8 <= n) {
      const w = from.getUint32(base + i, true);
      const v = from.getUint32(base + i + 4, true);
      if (needsEscape(w)) break;
      to.setUint32(outBase + at, w, true);
      if (needsEscape(v)) {
        at += 4;
        i += 4;
        break;
      }
      to.setUint32(outBase + at + 4, v, true);
      at += 8;
      i += 8;
    }
    for (const end = Math.min(n, i + 4); i < end; i++) at = writeByte(bytes[i]!, out, at);
  }
  return at;
}

/** One byte below 0x80 (or of a valid character), escaped when JSON needs it. */
function writeByte(b: number, out: Buffer, at: number): number {
  const length = ESCAPE_LENGTH[b]!;
  if (length === 0) {
    out[at] = b;
    return at + 1;
  }
  for (let k = 0, e = b * 8; k < length; k++) out[at++] = ESCAPE_BYTES[e + k]!;
  return at;
}

/**
 * Not valid UTF-8: the characters that are kept, and U+FFFD for each maximal subpart of a
 * sequence that is not one (the WHATWG Encoding standard's UTF-8 decoder: the byte that breaks a
 * sequence starts the next one).
 */
function writeDecoded(bytes: Buffer, out: Buffer, at: number): number {
  const n = bytes.length;
  let i = 0;
  while (i < n) {
    const b = bytes[i]!;
    if (b < 0x80) {
      at = writeByte(b, out, at);
      i++;
      continue;
    }
    const need = sequenceLength(b) - 1;
    // the second byte's range rules out overlong forms, surrogates and code points past U+10FFFF
    let lower = b === 0xe0 ? 0xa0 : b === 0xf0 ? 0x90 : 0x80;
    let upper = b === 0xed ? 0x9f : b === 0xf4 ? 0x8f : 0xbf;
    let k = 1;
    for (; k <= need && i + k < n; k++) {
      const c = bytes[i + k]!;
      if (c < lower || c > upper) break;
      lower = 0x80;
      upper = 0xbf;
    }
    if (need > 0 && k > need) {
      for (let j = 0; j < k; j++) out[at++] = bytes[i + j]!;
    } else {
      out[at++] = REPLACEMENT[0];
      out[at++] = REPLACEMENT[1];
      out[at++] = REPLACEMENT[2];
    }
    i += k;
  }
  return at;
}

/**
 * A DataView over the whole memory of `b` (one per slot, 0 for input and 1 for output, kept while
 * the memory is the same: the chunks of a batch share one, and so do the lines of a slab).
 */
const views: [DataView, DataView] = [new DataView(new ArrayBuffer(0)), new DataView(new ArrayBuffer(0))];
function viewOf(b: Buffer, slot: 0 | 1): DataView {
  const view = views[slot];
  if (view.buffer === b.buffer) return view;
  views[slot] = new DataView(b.buffer);
  return views[slot];
}

/** How many bytes at the end of `b` begin a UTF-8 character that continues in the next chunk. */
function incompleteTail(b: Buffer): number {
  for (let back = 1; back <= 3 && back <= b.length; back++) {
    const byte = b[b.length - back]!;
    if ((byte & 0xc0) === 0x80) continue; // a continuation byte: look further back
    const need = sequenceLength(byte);
    return need > back ? back : 0;
  }
  return 0;
}

/** Length of the UTF-8 sequence a lead byte starts (1 for ASCII and for bytes that start none). */
function sequenceLength(lead: number): number {
  if (lead >= 0xf0 && lead <= 0xf4) return 4;
  if (lead >= 0xe0) return lead <= 0xef ? 3 : 1;
  if (lead >= 0xc2) return 2;
  return 1;
}
